"""The word recipes (book-words-deep, book-words): the hand-written sequence loss, the beam search, the printed
record they compare with, and tiny runs trained, restored in a fresh process, killed and resumed exactly."""
import csv
import dataclasses
import itertools
import json
import signal

import numpy as np
import pytest
import tensorflow as tf

from reproduce.beam import beam_segment
from reproduce.book_record import PRINTED_PLATEAU_START, printed_word_steps
from reproduce.recipes import RECIPES, tiny_options
from reproduce.session import THREADS_ENV
from reproduce.train import Plateau
from reproduce.word_runs import DeepWordsConfig, WordsConfig, book_documents
from reproduce.words import load_words, untied_ids
from reproduce.words_deep import sequence_loss
from tests.conftest import run_cli, run_here
from tests.test_beam import TableBeam

tf1 = tf.compat.v1


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_clock(table):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in table]


# ---------------------------------------------------------------- the loss
def test_sequence_loss_is_contribs_weighted_batch_mean_per_step():
    rng = np.random.default_rng(0)
    B, T, V = 4, 3, 7
    logits = rng.normal(size=[B, T, V]).astype(np.float32)
    targets = rng.integers(0, V, size=[B, T]).astype(np.int32)
    weights = rng.uniform(0.1, 2.0, size=[B, T]).astype(np.float32)
    with tf.Graph().as_default(), tf1.Session() as session:
        weighted, uniform, library = session.run([
            sequence_loss(logits, targets, weights),
            tf.reduce_sum(sequence_loss(logits, targets, tf.ones([B, T]))),
            tf1.losses.sparse_softmax_cross_entropy(targets, logits)])
    shifted = logits - logits.max(axis=2, keepdims=True)
    crossent = np.log(np.exp(shifted).sum(axis=2)) - np.take_along_axis(shifted, targets[:, :, None], 2)[:, :, 0]
    assert np.allclose(weighted, (crossent * weights).sum(axis=0) / (weights.sum(axis=0) + 1e-12), rtol=1e-5)
    # Unit weights: the notebook's loss (summed over time) is T times the mean cross-entropy.
    assert np.isclose(uniform, T * library, rtol=1e-5)


def test_deep_fused_training_computes_the_notebooks_numbers():
    """book-words-deep trains each layer as one BlockLSTM op (graph fast); the notebook's dynamic_rnn over
    DropoutWrappers (graph faithful) from the same seed starts from the same variables, under the same names, and
    gives the same losses, perplexities and variables to 1e-6 over 5 iterations with dropout."""
    recipe, V = RECIPES["book-words-deep"], 50
    config = recipe.tiny_config()
    assert config.graph == "fast" and config.dropout > 0
    rng = np.random.default_rng(0)
    vectors = rng.normal(0.0, 0.1, [V, config.embedding_size]).astype(np.float32)
    batches = [rng.integers(0, V, [2, config.num_unrollings, config.batch_size]) for _ in range(5)]
    trained = {}
    for graph in ("faithful", "fast"):
        model = recipe.build(dataclasses.replace(config, graph=graph), V)
        with tf1.Session(graph=model.graph) as session:
            session.run(model.init)
            model.load_embeddings(session, vectors)
            variables = model.graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)
            initial = session.run({v.name: v for v in variables})
            numbers = [session.run([model.optimizer, model.loss, model.train_perplexity_without_exp],
                                   model.train_feed(inputs, labels, iteration))[1:]
                       for iteration, (inputs, labels) in enumerate(batches)]
            trained[graph] = initial, np.array(numbers), session.run({v.name: v for v in variables})
    (faithful_initial, faithful_numbers, faithful_variables), (fast_initial, fast_numbers, fast_variables) = \
        trained["faithful"], trained["fast"]
    assert set(fast_variables) == set(faithful_variables)
    assert all(np.array_equal(fast_initial[name], faithful_initial[name]) for name in faithful_initial)
    np.testing.assert_allclose(fast_numbers, faithful_numbers, rtol=1e-6)
    for name, values in faithful_variables.items():
        np.testing.assert_allclose(fast_variables[name], values, rtol=0, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------- beam search
# Greedy from 0 takes 1 (0.5) then anything at most 0.4; the best pair goes through 2: 0.45 x 0.9.
TABLE = [[0.05, 0.5, 0.45, 0.0], [0.2, 0.4, 0.0, 0.4], [0.0, 0.05, 0.05, 0.9], [0.4, 0.3, 0.2, 0.1]]


def best_sequence(start, length, exclude=()):
    table = np.asarray(TABLE)
    words = [w for w in range(len(table)) if w not in exclude]
    scored = ((np.prod([table[a, b] for a, b in zip((start,) + seq, seq)]), seq)
              for seq in itertools.product(words, repeat=length))
    return list(max(scored)[1])


def test_beam_keeps_the_most_probable_sequence():
    beam = TableBeam(TABLE, size=3)
    for length in (2, 3):
        found = beam_segment(None, beam, 0, length, np.random.RandomState(0), final="best")
        assert found == best_sequence(0, length)
    assert beam_segment(None, beam, 0, 2, None, final="best")[:2] == [2, 3]           # not greedy's 1 first


def test_beam_leaves_out_the_excluded_word():
    beam = TableBeam(TABLE, size=2)
    found = beam_segment(None, beam, 3, 2, np.random.RandomState(0), final="best", exclude=(0,))
    assert found == best_sequence(3, 2, exclude=(0,)) == [2, 3] and best_sequence(3, 2) == [0, 1]


# ---------------------------------------------------------------- the printed record
def test_printed_word_runs():
    deep = printed_word_steps("deep")
    assert len(deep) == 197 and deep[0]["documents"] == [1, 62, 82, 67, 57, 87, 58, 10, 30, 6]
    assert [row["valid_perplexity"] for row in deep[:3]] == [232.29, 195.28, 190.89]
    assert deep[2]["learning_rate_reduced"] == 1 and deep[-1]["step"] == 197
    assert printed_word_steps("lstm")[0]["valid_perplexity"] == 973.43
    assert book_documents(DeepWordsConfig(num_steps=2, docs_per_step=3)) == [[1, 62, 82], [72, 20, 11]]
    assert book_documents(WordsConfig(num_steps=1)) == [[16, 14, 76, 97, 11, 64, 81, 80, 68, 99]]


def test_the_deep_runs_printed_halvings_follow_the_books_rule_from_the_counter_its_earlier_runs_left():
    printed = printed_word_steps("deep")
    halved = [row["step"] for row in printed if row["learning_rate_reduced"]]
    assert len(halved) == 37 and halved[:7] == [3, 8, 13, 18, 23, 28, 33]

    def replayed(plateau):
        return [row["step"] for row in printed if plateau.update(row["valid_perplexity"])]
    assert replayed(Plateau(5, **PRINTED_PLATEAU_START["deep"])) == halved
    assert replayed(Plateau(5))[0] == 30                              # the counter as the notebook's code sets it


# ---------------------------------------------------------------- tiny runs
@pytest.fixture(scope="module")
def deep_runs(grimm_dir, tmp_path_factory):
    """A tiny book-words-deep run trained in this process, and the same run killed after its step-2 checkpoint
    in a fresh process and resumed."""
    folder = tmp_path_factory.mktemp("words-deep")
    options = ["--recipe", "book-words-deep", "--stories-dir", grimm_dir, *tiny_options("book-words-deep")]
    whole = run_here("train", *options, "--run-dir", folder / "whole", env={THREADS_ENV: "1"})
    assert whole.returncode == 0, whole.stderr
    killed = run_cli("train", *options, "--run-dir", folder / "killed",
                     env={"REPRODUCE_CRASH_AT": "book-words-deep:2", THREADS_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_here("train", "--resume", "--run-dir", folder / "killed", env={THREADS_ENV: "1"})
    assert resumed.returncode == 0, resumed.stderr
    return folder / "whole", folder / "killed", resumed


def test_deep_resume_continues_at_the_next_step(deep_runs):
    whole, killed, resumed = deep_runs
    assert "after step 2 of 3" in resumed.stdout and "step 3/3" in resumed.stdout and "step 2/3" not in resumed.stdout
    assert without_clock(rows(killed / "metrics.csv")) == without_clock(rows(whole / "metrics.csv"))
    assert (killed / "samples.txt").read_text() == (whole / "samples.txt").read_text()


def test_deep_run_compares_with_the_printed_curve(deep_runs):
    whole = deep_runs[0]
    table = rows(whole / "book_comparison.csv")
    assert [row["book_valid_perplexity"] for row in table] == ["232.29", "195.28", "190.89"]
    assert (whole / "book_comparison.png").stat().st_size > 0
    assert [row["learning_rate"] for row in rows(whole / "metrics.csv")] == ["0.0005"] * 3


def test_compare_sets_a_word_run_beside_its_printed_run_and_reads_one_at_a_time(deep_runs, tmp_path):
    whole, killed, _ = deep_runs
    result = run_here("compare", "--run", whole, "--out", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    ours = [float(row["valid_perplexity"]) for row in rows(whole / "metrics.csv")]
    assert report["steps_compared"] == 3 and report["curves"]["book"]["best_valid"] == 190.89
    assert report["curves"]["ours"]["best_valid"] == pytest.approx(min(ours), abs=1e-3)
    apart = [100 * (ours_valid / book_valid - 1) for ours_valid, book_valid in zip(ours, (232.29, 195.28, 190.89))]
    assert report["valid_apart_percent"]["max"] == pytest.approx(max(apart), abs=1e-3)
    assert "steps both have: 3" in result.stdout and (tmp_path / "report" / "book_comparison.png").is_file()
    table = [line for line in (tmp_path / "report" / "report.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 and table[-1].startswith("| 3 | ")                # header, rule, the 3 steps
    both = run_here("compare", "--run", whole, killed)
    assert both.returncode == 2 and "compare reads one word run at a time" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1


def test_deep_checkpoint_generates(deep_runs):
    """In a fresh process (the notebook's beam search), and in this one (top-3 draws), from the best checkpoint."""
    whole = deep_runs[0]
    words = set(json.loads((whole / "vocab.json").read_text())["words"])
    for sampler, length, run in (("beam-book", 10, run_cli), ("top3", 7, run_here)):
        result = run("generate", "--checkpoint", whole, "--sampler", sampler, "--length", length, "--seed", "1")
        assert result.returncode == 0, result.stderr
        assert "using best/model-" in result.stderr                # a run folder's best checkpoint, as for bigrams
        text = result.stdout.split()
        assert len(text) == 1 + length and set(text) <= words
        if sampler == "beam-book":
            assert "UNK" not in text[1:]                     # the notebook keeps UNK out of its beams


def test_book_words_trains_and_generates(grimm_dir, tmp_path):
    run = tmp_path / "run"
    trained = run_here("train", "--recipe", "book-words", "--stories-dir", grimm_dir, *tiny_options("book-words"),
                       "--run-dir", run, env={THREADS_ENV: "1"})
    assert trained.returncode == 0, trained.stderr
    assert len(rows(run / "metrics.csv")) == 3 and (run / "book_comparison.png").is_file()
    described = json.loads((run / "embeddings.json").read_text())
    corpus = load_words(grimm_dir, WordsConfig.tiny().num_files)
    untied = {corpus.reverse_dictionary[i] for i in untied_ids(corpus.counter, corpus.reverse_dictionary)}
    neighbours = described["probe_neighbours"]      # searched among the words every tie order names alike
    assert described["source"] == "cbow" and neighbours and set(neighbours) <= untied
    assert all(len(close) == 5 and word not in close and set(close) <= untied for word, close in neighbours.items())
    result = run_cli("generate", "--checkpoint", run, "--prime", "The king said", "--length", "40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["the", "king", "said"] and len(result.stdout.split()) == 43


def test_evaluate_scores_a_word_run_with_the_state_carried(deep_runs, corpora_dir):
    """evaluate's per-story perplexity (all stories side by side) equals feeding the story word by word through
    the generation step of the restored model, one row, the state carried."""
    from reproduce.classics import common
    from reproduce.data import read_story, to_ids
    from reproduce.recipes import RECIPES
    from reproduce.rundir import RunDir
    from reproduce.words import read_words
    whole = deep_runs[0]
    result = run_here("evaluate", "--checkpoint", whole, "--stories-dir", corpora_dir / "grimm-unseen",
                      "--files", "101-102")
    assert result.returncode == 0, result.stderr
    scored = rows(whole / "evaluate-101-102.csv")
    run = RunDir(whole)
    recipe = RECIPES["book-words-deep"]
    config, words = recipe.read_config(run), run.vocab()["words"]
    ids = to_ids(read_words(read_story(corpora_dir / "grimm-unseen" / "101.txt")), {w: i for i, w in enumerate(words)})
    model = recipe.build(config, len(words))
    best = json.loads((whole / "best" / "best.json").read_text())["checkpoint"]        # what evaluate scores
    with common.restored(run, model, str(whole / "best" / best)) as session:
        one = model.beam_graph(1)
        session.run(one.init)
        nll = [-np.log(one.step(session, [a])[0][b] + 1e-10) for a, b in zip(ids[:-1], ids[1:])]
    assert scored[0]["story"] == "101.txt" and int(scored[0]["bigrams"]) == len(ids)
    assert np.isclose(float(scored[0]["perplexity"]), np.exp(np.mean(nll)), rtol=1e-4)
