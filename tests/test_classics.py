"""The neighbouring classics: data helpers, and each recipe trained tiny and sampled from its restored
checkpoint (in this process; aesop-word trains and aesop-context samples in a fresh one too)."""
import argparse
import csv
import dataclasses
import functools
import json
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from reproduce import classics, main
from reproduce.classics import aesop, aesop_context, char_rnn, common, fable, shakespeare
from reproduce.classics.configs import FABLE, AesopConfig, AesopContextConfig, CharConfig, ShakespeareConfig
from reproduce.errors import UserError
from reproduce.recipes import RECIPES, tiny_options
from reproduce.sample import pick_sampler
from reproduce.session import THREADS_ENV, session_config
from tests.conftest import run_cli, run_here

# Each recipe's tiny configuration (its module's TINY).
SMALL_SHAKESPEARE = tiny_options("shakespeare-char")
SMALL_AESOP = tiny_options("aesop-word")
SMALL_CONTEXT = tiny_options("aesop-context")
SMALL_CHAR = tiny_options("char-lstm")


@pytest.fixture(scope="session")
def shakespeare_file(corpora_dir):
    return corpora_dir / "shakespeare" / "input.txt"


def read_metrics(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- data and helpers
def test_aesop_dictionary_is_the_articles(corpora_dir):
    shipped = FABLE.read_bytes()
    assert shipped == (corpora_dir / "aesop" / "belling_the_cat.txt").read_bytes()
    words = fable.read_words(shipped.decode())
    dictionary, reverse_dictionary = aesop.build_dataset(words, seed=0)
    assert len(words) == 204 and len(dictionary) == 112
    assert [reverse_dictionary[dictionary[w]] for w in words] == words
    # The article lists [",": 0] ["the": 1] ... ["council": 37] ... ["spoke": 111]: by frequency, and
    # words of equal frequency in an arbitrary order (75 words occur once: ids 37-111).
    assert (dictionary[","], dictionary["the"]) == (0, 1)
    counts = [words.count(w) for w in reverse_dictionary]
    assert counts == sorted(counts, reverse=True) and counts.index(1) == 37
    other, _ = aesop.build_dataset(words, seed=1)
    assert other != dictionary and [words.count(w) for w in other] == counts
    assert aesop.build_dataset(words, seed=0)[0] == dictionary
    # Not in order of first appearance, which would number a run of rare words one after another.
    ids = [dictionary[w] for w in "consider what measures they".split()]
    assert ids != list(range(ids[0], ids[0] + 4))


def test_aesop_story_check_scores_the_articles_listing(golden_dir):
    words = fable.read_words(FABLE.read_text())
    listing_11 = (golden_dir / "aesop_word_lstm_sample_had_a_general.txt").read_text().split()
    assert listing_11[:3] == ["had", "a", "general"] and len(listing_11) == 35
    assert fable.words_as_in_text(words, listing_11[:3], listing_11[3:]) == 32
    assert fable.words_as_in_text(words, listing_11[:3], ["council", "to", "bell"] + listing_11[6:]) == 31
    listing_12 = (golden_dir / "aesop_word_lstm_sample_mouse_mouse_mouse.txt").read_text().split()
    assert fable.words_as_in_text(words, listing_12[:3], listing_12[3:]) is None      # a seed not in the fable


def test_aesop_walk_reads_both_cat_windows_equally_and_by_last():
    """The article's walk reads the fable's two "the cat ." windows equally often, "-> by" always after "-> some"."""
    import random
    words = fable.read_words(FABLE.read_text())
    offsets = [o for _, o in zip(range(20000), fable.window_offsets(len(words), 3, random.Random(5)))]
    assert all(0 <= o <= len(words) - 4 for o in offsets) and offsets[0] <= 4
    steps = np.diff(offsets)
    assert set(steps[steps > 0]) == {4}                                      # a pass reads every 4th window
    restarts = [(a, b) for a, b in zip(offsets, offsets[1:]) if b < a]           # past the end: back to [0, 4]
    assert {b for _, b in restarts} == {0, 1, 2, 3, 4} and all(a > len(words) - 8 for a, _ in restarts)
    cat = [i for i in range(len(words) - 3) if words[i:i + 3] == ["the", "cat", "."]]
    assert cat == [22, 126] and [words[i + 3] for i in cat] == ["some", "by"]
    some, by = [i for i, o in enumerate(offsets) if o == 22], [i for i, o in enumerate(offsets) if o == 126]
    assert len(some) > 50 and abs(len(some) - len(by)) <= 1
    assert all(b - a == 26 for a, b in zip(some, by))                     # "by" always 26 iterations later
    pairs = fable.followers(words, 3)
    assert {c: [w for _, w in f] for c, f in pairs.items() if len({w for _, w in f}) > 1} == {
        ("the", "cat", "."): ["some", "by"], ("up", "and", "said"): ["he", "that"]}


def test_aesop_report_names_the_fork(golden_dir):
    words = fable.read_words(FABLE.read_text())
    listing_11 = (golden_dir / "aesop_word_lstm_sample_had_a_general.txt").read_text().split()
    prime, article = listing_11[:3], listing_11[3:]
    other = article[:17] + words[129:129 + 15]                              # "the cat ." then "by this means ..."
    assert fable.words_as_in_text(words, prime, other) == 17
    assert fable.follows_text(words, prime, article) == fable.follows_text(words, prime, other) == 32
    assert fable.follows_text(words, prime, article[:5] + ["cat"] + article[6:]) == 28    # it and the 3 after it
    assert [(step, context) for step, context, _ in fable.forks(words, prime, other)] == [(17, ("the", "cat", "."))]
    dictionary = {w: i for i, w in enumerate(dict.fromkeys(words))}
    probabilities = [np.full(len(dictionary), 0.01) for _ in other]
    probabilities[17][dictionary["by"]], probabilities[17][dictionary["some"]] = 0.6, 0.3
    lines = []
    measures = aesop.report_match(words, prime, other, lines.append, probabilities, dictionary)
    assert lines == ["(17 of the 32 words after 'had a general' are the text's)",
                     "(it leaves the text at word 18: 'by' where the text has 'some')",
                     "(32 of the 32 follow their 3 preceding words as somewhere in the text)",
                     "(word 18 follows 'the cat .', which the text continues with 'some' (word 26) and 'by' "
                     "(word 130); the model: 'some' 0.300, 'by' 0.600 -> 'by')"]
    assert (measures["words_as_in_text"], measures["follow_their_context"], measures["first_departure"]) == \
        (17, 32, {"word": 18, "story": "by", "text": "some"})
    assert measures["forks"] == [{"word": 18, "context": "the cat .", "took": "by",
                                  "text": [{"word": "some", "at": 26}, {"word": "by", "at": 130}],
                                  "model": {"some": pytest.approx(0.3), "by": pytest.approx(0.6)}}]
    assert fable.story_measures(words, prime, article)["first_departure"] is None          # listing 11: none


def test_aesop_walk_reads_say_which_fork_window_was_read_last():
    """fable.walk_reads on a walk given by hand: at each progress line, the window of each fork read the more
    recently, and at the end how many iterations before the last one each was read."""
    words = fable.read_words(FABLE.read_text())
    cat_some, cat_by, said_he, said_that = 22, 126, 40, 164          # the windows' starts
    walk = [0, cat_some, 8, cat_by, said_he, 3, said_that, cat_some, 5]
    reads = fable.walk_reads(words, 3, iter(walk), len(walk), 3)
    assert reads == {"the cat .": {"iterations_before_the_end": {"some": 1, "by": 5},
                                   "read_last": ["some", "by", "some"]},
                     "up and said": {"iterations_before_the_end": {"he": 4, "that": 2},
                                     "read_last": [None, "he", "that"]}}
    lines = []
    aesop.report_walk(reads, lines.append)
    assert lines == ["(training read 'the cat .' last with 'some', 1 iteration(s) before its end; 'by' 5 before)",
                     "(training read 'up and said' last with 'that', 2 iteration(s) before its end; 'he' 4 before)"]


def test_aesop_prime_errors_name_the_word():
    dictionary = {"had": 0, "a": 1, "general": 2}
    assert aesop.prime_ids("had a general", dictionary, 3) == [0, 1, 2]
    with pytest.raises(UserError, match="'dog' is not in the dictionary") as error:
        aesop.prime_ids("had a dog", dictionary, 3)
    assert error.value.exit_code == 2
    with pytest.raises(UserError, match="has 2 word"):
        aesop.prime_ids("had a", dictionary, 3)


def test_shakespeare_streams_are_the_articles_batches():
    ids = np.arange(23) * 7 % 23
    inputs, targets = shakespeare.stream_batches(ids, 5)
    rows = (len(ids) - 1) // 5                                   # the article's batch_contiguous_space_size
    expected_in = [[ids[i + rows * j] for j in range(5)] for i in range(rows)]
    expected_out = [[ids[i + rows * j + 1] for j in range(5)] for i in range(rows)]
    assert inputs.tolist() == expected_in and targets.tolist() == expected_out
    assert shakespeare.vocabulary("baca") == ["a", "b", "c"]


def test_char_windows_every_third_position():
    ids = np.arange(12)
    starts = char_rnn.window_starts(len(ids), 4, 3)
    assert starts.tolist() == [0, 3, 6]                          # range(0, len - maxlen, step)
    inputs, targets = char_rnn.windows(ids, starts, 4)
    assert inputs.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]] and targets.tolist() == [4, 7, 10]
    train, valid = char_rnn.split_text("x" * 1200, 1000, log=lambda m: None)
    assert (len(train), len(valid)) == (1000, 100)               # the first max_chars, then a tenth as many
    train, valid = char_rnn.split_text("y" * 500, 1000, log=lambda m: None)
    assert (len(train), len(valid)) == (450, 50)                 # a short text gives its last tenth


def test_context_probe_splices_foreign_prefixes():
    calls = []
    fake = argparse.Namespace(mean_loss=lambda session, inputs, targets, batch: calls.append(inputs) or len(calls))
    inputs, targets = np.arange(60).reshape(6, 10), np.arange(6)
    rows = char_rnn.CharModel.context_probe(fake, None, inputs, targets, 4, [1, 4, 50], np.random.RandomState(0))
    assert [r["context"] for r in rows] == [1, 4, 10] and [r["valid_loss"] for r in rows] == [1, 2, 3]
    for k, spliced in zip([1, 4, 10], calls):
        assert (spliced[:, 10 - k:] == inputs[:, 10 - k:]).all()             # the last k characters kept
        prefixes = {tuple(row) for row in inputs[:, :10 - k]}
        assert all(tuple(row) in prefixes for row in spliced[:, :10 - k])   # the rest: another window's
        if k < 10:
            assert (spliced[:, :10 - k] != inputs[:, :10 - k]).any(axis=1).sum() >= 4
    assert (calls[-1] == inputs).all()


def test_seed_fixes_the_legacy_cells_initial_weights():
    """tf-keras's default initializer of the legacy cells ignores the graph seed; the recipes' graphs must not."""
    import tensorflow as tf

    def initial(model_class, config, *args):
        model = model_class(config, *args)
        with tf.compat.v1.Session(graph=model.graph) as session:
            session.run(model.init)
            return {v.name: session.run(v) for v in model.graph.get_collection("trainable_variables")}

    configs = [(aesop.AesopModel, AesopConfig(num_nodes=16, layers=2), 112),
               (char_rnn.CharModel, CharConfig(cell="gru", num_nodes=16), 30),
               (shakespeare.ShakespeareModel, ShakespeareConfig(num_nodes=16, batch_size=4), 30)]
    for model_class, config, vocab_size in configs:
        first, again = initial(model_class, config, vocab_size), initial(model_class, config, vocab_size)
        other = initial(model_class, dataclasses.replace(config, seed=config.seed + 1), vocab_size)
        kernels = [name for name in first if "kernel" in name]
        assert kernels and first.keys() == again.keys()
        assert all((first[name] == again[name]).all() for name in first), model_class.__name__
        assert all((first[name] != other[name]).any() for name in kernels), model_class.__name__
        biases = {name: first[name] for name in first if "cell" in name and "bias" in name}
        assert biases and all(set(np.unique(b)) <= {0.0, 1.0} for b in biases.values())   # the cells' own


def test_threads_option_and_variable(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    default = session_config()                                            # without either: the core's set-up
    assert default.intra_op_parallelism_threads >= 1 and default.inter_op_parallelism_threads >= 1
    one = session_config(threads=1)
    assert (one.intra_op_parallelism_threads, one.inter_op_parallelism_threads) == (1, 1)
    monkeypatch.setenv(THREADS_ENV, "3")
    assert session_config().intra_op_parallelism_threads == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(UserError, match="REPRODUCE_THREADS"):
        session_config()


def test_samplers():
    """The one sampler set every recipe draws with (sample.py)."""
    rng = np.random.RandomState(0)
    p = np.array([0.1, 0.7, 0.2, 0.0])
    assert pick_sampler("greedy")(p, rng) == 1
    assert {pick_sampler("top3")(p, rng) for _ in range(50)} == {0, 1, 2}     # the 3 most probable
    cold = pick_sampler("temperature", 0.01)
    assert {cold(p, rng) for _ in range(20)} == {1}
    hot = [pick_sampler("temperature", 1.0)(p, rng) for _ in range(300)]
    assert 150 < hot.count(1) < 270 and hot.count(0) > 10


def test_text_file_is_downloaded_when_absent(tmp_path, shakespeare_file):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(shakespeare_file.parent))
    handler.log_message = lambda *a: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        target = tmp_path / "shakespeare" / "input.txt"
        with pytest.raises(UserError, match="--download"):
            common.read_text(target, url + "input.txt", download=False)
        text = common.read_text(target, url + "input.txt", download=True, log=lambda m: None)
        assert text == shakespeare_file.read_text() and target.read_bytes() == shakespeare_file.read_bytes()
        with pytest.raises(UserError, match="HTTP 404"):
            common.read_text(tmp_path / "other.txt", url + "missing.txt", download=True, log=lambda m: None)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["shakespeare"]      # nothing half-written
        server.shutdown()


def test_refuse_comparison_names_its_runs(tmp_path):
    (tmp_path / "comparison.json").write_text(json.dumps({"runs": ["char-rnn", "char-gru"]}))
    with pytest.raises(UserError, match=r"compares 2 runs; use one of them: .*char-rnn, .*char-gru") as caught:
        classics.refuse_comparison(tmp_path)
    assert caught.value.exit_code == 2
    classics.refuse_comparison(tmp_path / "char-rnn")              # a run folder passes
    assert {name for name, recipe in RECIPES.items() if not recipe.is_book} == {
        "shakespeare-char", "char-rnn", "char-lstm", "char-gru", "aesop-word", "aesop-context", "book-words",
        "book-words-deep"}


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main.main(["train", "--recipe", "aesop-word", "--compare-cells", "--run-dir", str(tmp_path / "a")]) == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main.main(["train", "--recipe", "aesop-word", "--run-dir", str(tmp_path / "full")]) == 2
    assert main.main(["train", "--recipe", "shakespeare-char", "--text-file", str(tmp_path / "absent.txt"),
                      "--run-dir", str(tmp_path / "b")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "--compare-cells is not used by recipe aesop-word" in lines[0] and "already holds a run" in lines[1] \
        and "absent.txt" in lines[2]


# ---------------------------------------------------------------- each recipe, end to end
def test_shakespeare_char_trains_and_generates(tmp_path, shakespeare_file):
    run = tmp_path / "sh"
    trained = run_here("train", "--recipe", "shakespeare-char", "--text-file", shakespeare_file, "--run-dir", run,
                       *SMALL_SHAKESPEARE)
    assert trained.returncode == 0, trained.stderr
    progress = [line for line in trained.stdout.splitlines() if " perplexity: " in line]
    assert progress and all(re.match(r"\d\.\d{3} perplexity: \d+\.\d{3} speed: \d+ wps .*ETA", l) for l in progress)
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "shakespeare-char" and config["layers"] == 2 and config["forget_bias"] == 0.0
    assert len(read_metrics(run / "metrics.csv")) == len(progress)
    assert (run / "ckpt" / "checkpoint").is_file() and (run / "ckpt" / "model-30.index").is_file()

    out = tmp_path / "sample.txt"
    generated = run_here("generate", "--checkpoint", run, "--length", "40", "--output", out)
    assert generated.returncode == 0, generated.stderr
    text = generated.stdout[:-1]
    assert text.startswith("A") and len(text) == 41                # the article's seed character, then 40
    assert out.read_text() == generated.stdout
    refused = run_here("generate", "--checkpoint", run, "--report", tmp_path / "story.json")
    assert refused.returncode == 2 and not (tmp_path / "story.json").exists()
    assert refused.stderr.strip() == "error: --report is not used by recipe shakespeare-char (only by aesop-word, " \
                                     "aesop-context); leave it out"


def test_aesop_word_trains_and_generates(tmp_path):
    run = tmp_path / "ae"
    trained = run_cli("train", "--recipe", "aesop-word", "--run-dir", run, *SMALL_AESOP)      # a fresh process
    assert trained.returncode == 0, trained.stderr
    lines = trained.stdout.splitlines()
    iters = [i for i, line in enumerate(lines) if line.startswith("Iter= ")]
    assert len(iters) == 3
    for i in iters:
        assert re.match(r"Iter= \d+00, Average Loss= \d+\.\d{6}, Average Accuracy= \d+\.\d{2}%", lines[i])
        assert re.fullmatch(r"\['[^']+', '[^']+', '[^']+'\] - \[\S+\] vs \[\S+\]", lines[i + 1])
    rows = read_metrics(run / "metrics.csv")
    assert [r["iteration"] for r in rows] == ["100", "200", "300"]
    assert all(0 <= float(r["text_accuracy"]) <= 100 * 199 / 201 + 1e-6 for r in rows)
    assert re.search(r"^Windows of the text predicted by the final model: \d+\.\d\d% of 201; "
                     r"at its forks: the cat \. -> some", trained.stdout, re.M)
    for row in rows:                                  # the model's odds at the fable's two forks, as they train
        fork = re.fullmatch(r"the cat \. -> some (0\.\d{3}) by (0\.\d{3}); "
                            r"up and said -> he (0\.\d{3}) that (0\.\d{3})", row["forks"])
        assert fork and float(fork[1]) + float(fork[2]) <= 1.0005 and float(fork[3]) + float(fork[4]) <= 1.0005
    assert json.loads((run / "config.json").read_text())["recipe"] == "aesop-word"
    assert (run / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(run.glob("*.part"))
    assert [label for label, _ in fable.fork_series(rows[0]["forks"])] == \
        ["the cat . -> some", "the cat . -> by", "up and said -> he", "up and said -> that"]
    again = run_here("train", "--recipe", "aesop-word", "--run-dir", tmp_path / "again", *SMALL_AESOP)
    assert again.returncode == 0, again.stderr                    # one --seed, one run: the same figures here
    assert [(r["average_loss"], r["forks"]) for r in read_metrics(tmp_path / "again" / "metrics.csv")] == \
        [(r["average_loss"], r["forks"]) for r in rows]

    generated = run_here("generate", "--checkpoint", run, "--prime", "had a general", "--length", "32",
                         "--report", tmp_path / "story.json")
    assert generated.returncode == 0, generated.stderr
    words = generated.stdout.split()
    dictionary = json.loads((run / "vocab.json").read_text())["words"]
    assert words[:3] == ["had", "a", "general"] and len(words) == 35 and all(w in dictionary for w in words)
    report = json.loads((tmp_path / "story.json").read_text())        # what stderr says, as JSON
    assert (report["recipe"], report["seed"], report["step"], report["sampler"], report["length"]) == \
        ("aesop-word", 0, 300, "greedy", 32)
    assert report["prime"] == "had a general" and report["story"] == words[3:]
    assert f"({report['words_as_in_text']} of the 32 words after 'had a general' are the text's)" in generated.stderr
    assert f"({report['follow_their_context']} of the 32 follow" in generated.stderr
    assert [fork["word"] for fork in report["forks"]] == [int(w) for w in re.findall(r"\(word (\d+) follows",
                                                                                      generated.stderr)]
    walk = report["walk"]                               # the training walk, replayed: 300 iterations, 3 lines
    assert set(walk) == {"the cat .", "up and said"} and all(len(w["read_last"]) == 3 for w in walk.values())
    assert set(walk["the cat ."]["iterations_before_the_end"]) == {"some", "by"}
    assert re.search(r"^\(training read 'the cat \.' last with '(some|by)', \d+ iteration\(s\) before its end; "
                     r"'(some|by)' \d+ before\)$", generated.stderr, re.M)
    assert re.search(r"\(\d+ of the 32 words after 'had a general' are the text's\)", generated.stderr)
    assert re.search(r"\(\d+ of the 32 follow their 3 preceding words as somewhere in the text\)", generated.stderr)
    fork = re.search(r"which the text continues with 'some' \(word 26\) and 'by' \(word 130\); the model: "
                     r"'some' (0\.\d{3}), 'by' (0\.\d{3}) -> '(\S+)'\)", generated.stderr)
    if fork:                                                        # the story reached "the cat ."
        assert float(fork[1]) + float(fork[2]) <= 1.0005

    unknown = run_here("generate", "--checkpoint", run, "--prime", "had a dog")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()] and "'dog'" in unknown.stderr


def test_aesop_context_reads_the_story_so_far_and_retells_the_fable(tmp_path):
    """Our variant: with the words before a fork as context, a small model gets past "the cat ." the way the
    fable does, where aesop-word's 3 words can only guess (README, "aesop-word: the story target")."""
    run = tmp_path / "ctx"
    trained = run_here("train", "--recipe", "aesop-context", "--run-dir", run, *SMALL_CONTEXT)
    assert trained.returncode == 0, trained.stderr
    assert [line.split(",")[0] for line in trained.stdout.splitlines() if line.startswith("Iter= ")] == \
        ["Iter= 200", "Iter= 400", "Iter= 600", "Iter= 800", "Iter= 1000"]
    rows = read_metrics(run / "metrics.csv")
    assert float(rows[-1]["text_accuracy"]) >= 95.0 > float(rows[0]["average_accuracy"])
    fork = re.fullmatch(r"the cat \. -> some (0\.\d{3}|1\.000) \(word 26\), by (0\.\d{3}|1\.000) \(word 130\); "
                        r"up and said -> he (0\.\d{3}|1\.000) \(word 44\), that (0\.\d{3}|1\.000) \(word 168\)",
                        rows[-1]["forks"])
    assert fork and float(fork[1]) > 0.5 and float(fork[2]) > 0.5    # each "the cat .": the fable's own next word
    assert fable.fork_series(rows[-1]["forks"])[:2] == [("the cat . -> some (word 26)", float(fork[1])),
                                                       ("the cat . -> by (word 130)", float(fork[2]))]
    assert (run / "metrics.png").stat().st_size > 1000
    story = (run / "samples.txt").read_text().split()
    fable_words = fable.read_words(FABLE.read_text())
    assert story[:3] == ["had", "a", "general"] and fable.words_as_in_text(fable_words, story[:3], story[3:]) >= 28

    generated = run_cli("generate", "--checkpoint", run, "--prime", "had a general", "--length", "32",
                        "--report", tmp_path / "story.json")
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.split() == story                        # a fresh process, the restored weights
    report = json.loads((tmp_path / "story.json").read_text())
    assert report["story"] == story[3:] and report["words_as_in_text"] >= 28 and "walk" not in report
    fork = re.search(r"'some' \(word 26\) and 'by' \(word 130\); the model: 'some' ([01]\.\d{3}), 'by' ([01]\.\d{3}) "
                     r"-> 'some'\)", generated.stderr)
    assert fork and float(fork[1]) > 0.9 > float(fork[2])
    short = run_here("generate", "--checkpoint", run, "--prime", "cat", "--length", "3")
    assert short.returncode == 0 and len(short.stdout.split()) == 4   # any prime of 1 to 12 words
    for prime, message in [("had a dog", "'dog'"), (" ".join(["the"] * 13), "1 to 12")]:
        refused = run_here("generate", "--checkpoint", run, "--prime", prime)
        assert refused.returncode == 2 and refused.stdout == "" and message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_a_run_folder_given_relative_to_the_working_directory_generates(tmp_path):
    """What a user types: a relative --run-dir, then generate from the same folder, here and from elsewhere."""
    trained = run_here("train", "--recipe", "aesop-context", "--run-dir", "runs/ctx", "--num-steps", "20",
                       "--num-nodes", "8", "--num-unrollings", "6", "--display-step", "10", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    checkpoint_file = (tmp_path / "runs" / "ctx" / "ckpt" / "checkpoint").read_text()
    assert checkpoint_file == ('model_checkpoint_path: "model-20"\n'
                               'all_model_checkpoint_paths: "model-10"\nall_model_checkpoint_paths: "model-20"\n')
    story = (tmp_path / "runs" / "ctx" / "samples.txt").read_text().split()
    for cwd, folder in [(tmp_path, "runs/ctx"), (tmp_path / "runs", "ctx"), (None, tmp_path / "runs" / "ctx")]:
        generated = run_here("generate", "--checkpoint", folder, "--prime", "had a general", "--length", "32",
                             cwd=cwd)
        assert generated.returncode == 0, generated.stderr
        assert generated.stdout.split() == story


def test_aesop_context_feeds_the_last_words_of_each_context():
    model = aesop_context.ContextModel(AesopContextConfig(num_nodes=8, num_unrollings=4), 10)
    feed = model.contexts_feed([[1, 2], [1, 2, 3, 4, 5, 6]])
    assert feed[model.ids].tolist() == [[1, 2, 0, 0], [3, 4, 5, 6]] and feed[model.lengths].tolist() == [2, 4]
    import tensorflow as tf
    with tf.compat.v1.Session(graph=model.graph) as session:
        session.run(model.init)
        padded = session.run(model.probabilities, feed)
        alone = session.run(model.probabilities, model.contexts_feed([[1, 2]]))
    assert np.allclose(padded[0], alone[0], atol=1e-6)              # padding after a row's words changes nothing


def test_char_cells_train_compare_and_generate(tmp_path, shakespeare_file):
    top = tmp_path / "cells"
    trained = run_here("train", "--recipe", "char-lstm", "--compare-cells", "--text-file", shakespeare_file,
                       "--run-dir", top, *SMALL_CHAR)
    assert trained.returncode == 0, trained.stderr
    assert "----- diversity: 0.5" in trained.stdout and "----- diversity: 1.2" in trained.stdout
    table = trained.stdout[trained.stdout.index("Validation loss after 20 steps"):]
    assert all(re.search(rf"^{cell} +\d+\.\d{{4}}", table, re.M) for cell in ("rnn", "lstm", "gru"))
    table = trained.stdout[trained.stdout.index("Context probe (best weights)"):]
    assert all(re.search(rf"^{cell}( +\d+\.\d{{4}}){{6}}$", table, re.M) for cell in ("rnn", "lstm", "gru"))
    probe = read_metrics(top / "context_probe.csv")
    assert [r["context"] for r in probe if r["cell"] == "rnn"] == ["1", "2", "4", "8", "16", "20"]
    for cell, recipe in [("rnn", "char-rnn"), ("lstm", "char-lstm"), ("gru", "char-gru")]:
        best = min(float(r["valid_loss"]) for r in read_metrics(top / recipe / "metrics.csv"))
        whole = [float(r["valid_loss"]) for r in probe if r["cell"] == cell and r["context"] == "20"]
        assert whole == [pytest.approx(best, abs=1e-5)]           # k = the whole window: the best weights' loss
    rows = read_metrics(top / "cell_comparison.csv")
    assert {r["cell"] for r in rows} == {"rnn", "lstm", "gru"} and {r["step"] for r in rows} >= {"20"}
    assert (top / "cell_comparison.png").stat().st_size > 1000
    for recipe, cell in char_rnn.CELLS.items():
        config = json.loads((top / recipe / "config.json").read_text())
        assert (config["recipe"], config["cell"], config["num_steps"]) == (recipe, cell, 20)
        best = json.loads((top / recipe / "best" / "best.json").read_text())
        assert set(best) == {"step", "valid_loss", "checkpoint"}                # the figure named for what it is
        assert float(read_metrics(top / recipe / "metrics.csv")[-1]["valid_loss"]) > 0

    for recipe in char_rnn.CELLS:
        generated = run_here("generate", "--checkpoint", top / recipe, "--prime", "First", "--length", "25",
                             "--sampler", "temperature", "--temperature", "0.5")
        assert generated.returncode == 0, generated.stderr
        assert generated.stdout.startswith("First") and len(generated.stdout) == len("First") + 25 + 1

    whole = run_here("generate", "--checkpoint", top)
    assert whole.returncode == 2 and "char-gru" in whole.stderr and len(whole.stderr.strip().splitlines()) == 1
