"""The rules every recipe follows: options a recipe does not use are refused, one run folder per writer,
files read back are checked. In-process and without training: each test takes well under a second."""
import json
import os

import pytest

from reproduce import main, recipes, rundir
from reproduce.errors import UserError
from reproduce.rundir import RunDir


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("error: ") and "Traceback" not in err, err
    assert all(fragment in err for fragment in fragments), err


# ---------------------------------------------------------------- the table
@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_recipe_builds_its_tiny_model(name):
    """Each recipe is one entry: its tiny configuration (the tests' and bench's) builds a graph of its own
    with trainable variables, the config carries the recipe's name, seed and defining values, and it reads back
    from its dict (config.json's) as the same typed config."""
    import tensorflow as tf
    recipe = recipes.RECIPES[name]
    config = recipe.tiny_config()
    assert isinstance(config, recipe.config_class) and (config.recipe, config.seed) == (name, 0)
    assert all(getattr(config, field) == value for field, value in recipe.values.items())
    assert recipe.config_class.from_dict(config.to_dict()) == config
    model = recipe.build(config, 12)
    with model.graph.as_default():
        trainable = tf.compat.v1.trainable_variables()
    assert trainable and all(v.graph is model.graph for v in trainable)
    assert recipe.samplers[0] in recipe.samplers and recipe.options >= recipes.EVERY_RECIPE


# ---------------------------------------------------------------- train: an option the recipe does not use
@pytest.mark.parametrize("recipe, option", [
    ("book", ["--layers", "2"]), ("book-gru", ["--text-file", "x.txt"]), ("book", ["--compare-cells"]),
    ("shakespeare-char", ["--dropout", "0.1"]), ("shakespeare-char", ["--chars-in-segment", "50"]),
    ("char-lstm", ["--docs-per-step", "2"]), ("char-rnn", ["--stories-dir", "stories"]),
    ("aesop-word", ["--batch-size", "8"]), ("aesop-context", ["--download"]), ("aesop-word", ["--graph", "fast"]),
])
def test_an_option_the_recipe_does_not_use_is_refused(recipe, option, tmp_path, capsys):
    run = tmp_path / "run"
    assert main.main(["train", "--recipe", recipe, "--run-dir", str(run), *option]) == 2
    one_line_error(capsys, f"{option[0]} is not used by recipe {recipe}")
    assert not run.exists()                                              # refused before anything is written


def test_the_books_options_are_its_config_fields():
    parser = main.build_parser()
    args = parser.parse_args(["train", "--learning-rate", "0.002", "--decay-threshold", "3", "--graph", "faithful"])
    assert (args.learning_rate, args.decay_threshold, args.graph) == (0.002, 3, "faithful")
    book_options = recipes.RECIPES["book"].options
    assert book_options >= {"learning_rate", "dropout", "num_steps", "seed", "download"}
    assert "cell" not in book_options and "threads" not in book_options   # defines a recipe: no option


# ---------------------------------------------------------------- generate: an option the sampler does not use
def fake_run(tmp_path, recipe, **config):
    run = tmp_path / recipe
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"recipe": recipe, **config}))
    return run


@pytest.mark.parametrize("recipe, options, fragment", [
    ("book", ["--sampler", "nucleus"], "unknown sampler 'nucleus'"),
    ("char-rnn", ["--sampler", "temperature", "--temperature", "0"], "--temperature: must be above 0"),
    ("char-rnn", ["--sampler", "temperature", "--length", "100001"], "--length 100001 is past the limit"),
    ("aesop-word", ["--length", "0"], "--length must be above 0"),
    ("book", ["--sampler", "beam", "--length", "3"], "--length 3 is shorter than --beam-length 5"),
    ("book", ["--temperature", "0.5"], "--temperature is used by --sampler temperature only"),
    ("book", ["--beam-length", "3"], "--beam-length is used by --sampler beam and beam-book only"),
    ("book", ["--sampler", "greedy", "--prime", "the king", "--seed", "3"], "--seed is not used here"),
    ("aesop-word", ["--seed", "3"], "--seed is not used here"),
    ("char-gru", ["--sampler", "beam"], "--sampler beam is not a sampler of recipe char-gru"),
    ("shakespeare-char", ["--graph", "fast"], "--graph is not used by recipe shakespeare-char"),
])
def test_a_generate_option_the_sampler_does_not_use_is_refused(recipe, options, fragment, tmp_path, capsys):
    run = fake_run(tmp_path, recipe)
    try:
        status = main.main(["generate", "--checkpoint", str(run), *options])
    except SystemExit as refused:                   # a value argparse's type refuses
        status = refused.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "error: " in err and fragment in err and "Traceback" not in err, err


# ---------------------------------------------------------------- files read back
@pytest.mark.parametrize("config, fragment", [
    ('{"recipe": "book", "num_nodes": "many"}', "field 'num_nodes' is 'many', not int"),
    ('{"recipe": "char-gru", "num_nodes": 16, "diversities": 0.5}', "field 'diversities' is 0.5, not list"),
    ('{"recipe": "aesop-word", "seed": true}', "field 'seed' is True, not int"),
    ('["book"]', "holds a JSON list, not an object"),
    ('{"num_nodes": 16}', "no field 'recipe'"),
    ('{"recipe": "book"', "unreadable"),
])
def test_a_damaged_config_is_one_line_naming_the_file_and_the_field(config, fragment, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(config)
    (run / "vocab.json").write_text('{"bigrams": ["UNK", "a "]}')
    assert main.main(["generate", "--checkpoint", str(run)]) in (1, 2)
    one_line_error(capsys, "config.json", fragment)


def test_vocab_best_and_state_files_are_checked(tmp_path):
    run = RunDir(fake_run(tmp_path, "book"))
    (run.path / "vocab.json").write_text('["a"]')
    with pytest.raises(UserError, match=r"vocab.json: holds a JSON list, not an object"):
        run.vocab({"bigrams": list})
    run.best.mkdir()
    (run.best / "best.json").write_text('{"step": 3, "valid_perplexity": 9.5}')
    with pytest.raises(UserError, match=r"best.json: no field 'checkpoint'"):
        run.best_info()
    (run.best / "best.json").write_text('{"step": 3, "checkpoint": "model-3", "valid_loss": "low"}')
    run.best_figure = "loss"
    with pytest.raises(UserError, match=r"best.json: field 'valid_loss' is 'low', not a number"):
        run.best_info()
    (run.best / "best.json").write_text('{"step": 3, "checkpoint": "model-3", "valid_perplexity": 1.5}')
    assert run.best_info()["valid_loss"] == 1.5        # a loss recorded under the book's name reads as a loss
    run.ckpt.mkdir()
    (run.ckpt / "state-2.json").write_text('{"step": "two"}')
    with pytest.raises(UserError, match=r"state-2.json: field 'step' is 'two', not an integer"):
        run.read_state(2)


# ---------------------------------------------------------------- one writer per run folder
def test_runs_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "RUNS_ROOT", tmp_path / "checkpoints")
    monkeypatch.setattr(rundir.time, "strftime", lambda _: "20261201-000000")
    first, second = RunDir.create("book"), RunDir.create("book")
    assert first.path.name == "book-20261201-000000" and second.path.name == "book-20261201-000000-2"


def test_a_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    writer = RunDir.create("book", tmp_path / "run")
    with pytest.raises(UserError, match=rf"run is being trained by process {os.getpid()}"):
        RunDir(tmp_path / "run").lock()
    assert RunDir(tmp_path / "run").locked_by_another()
    writer.unlock()                                         # as the kernel does when the process ends
    assert not RunDir(tmp_path / "run").locked_by_another()
    RunDir(tmp_path / "run").lock()


def test_run_dir_naming_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main.main(["train", "--recipe", "aesop-word", "--run-dir", str(tmp_path / "file")]) == 2
    one_line_error(capsys, "is a file, not a folder")


def test_compare_says_in_one_line_what_it_does_with_a_classics_run(tmp_path, capsys):
    run = fake_run(tmp_path, "aesop-word")
    (run / "vocab.json").write_text('{"words": ["the"]}')
    assert main.main(["compare", "--run", str(run)]) == 2
    one_line_error(capsys, "is a run of aesop-word, not of a book recipe", "metrics.csv", "generate --checkpoint")


def test_a_reader_reads_the_checkpoint_that_replaced_the_one_it_found(tmp_path):
    """generate or compare on a run that is training: the best checkpoint it found is replaced (and removed)
    before it reads it; it reads the new one."""
    import numpy as np
    import tensorflow as tf
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        weights = tf1.Variable(np.zeros(3, np.float32), name="weights")
        saver = tf1.train.Saver()
        with tf1.Session() as session:
            run = RunDir(fake_run(tmp_path, "book"))
            for step, value in ((1, 1.0), (2, 2.0)):
                session.run(weights.assign(np.full(3, value, np.float32)))
                run.save_best(session, saver, step, 10.0 - step)           # best/model-1, then model-2 (model-1 removed)
            found = iter([run.best / "model-1", run.best / "model-2"])      # what a reader saw, then what it finds now
            run.checkpoint_for_generation = lambda prefer_best=True: next(found)
            assert run.restore_for_reading(session, saver, [weights]) == run.best / "model-2"
            assert session.run(weights).tolist() == [2.0, 2.0, 2.0]


def test_files_written_follow_the_umask(tmp_path):
    from reproduce.files import write_atomic
    previous = os.umask(0o027)
    try:
        write_atomic(tmp_path / "report.md", "text\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o640          # open() would give 0640, not 0600
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]             # no temporary file left


# ---------------------------------------------------------------- generate's options, resolved once
def test_generate_options_are_resolved_without_touching_the_parsed_options():
    args = main.build_parser().parse_args(["generate", "--checkpoint", "run", "--sampler", "beam"])
    before = dict(vars(args))
    options = recipes.check_generate_options(args, recipes.RECIPES["book"])
    assert vars(args) == before
    assert (options.sampler, options.temperature, options.beam_length, options.beam_neighbors, options.length) == \
        ("beam", 1.0, 5, 5, None)
    default = recipes.check_generate_options(main.build_parser().parse_args(["generate", "--checkpoint", "run"]),
                                             recipes.RECIPES["aesop-word"])
    assert default.sampler == "greedy"                       # the recipe's first sampler


def test_a_signal_whose_exception_a_c_extension_swallowed_still_ends_the_command(capsys):
    """TensorFlow's op dispatch swallows the exception a SIGTERM handler raises while a graph is built; the
    command still ends with the signal's one line and status."""
    import signal
    import time
    from reproduce.errors import report_errors

    def action():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            pass                                   # swallowed, as the dispatch does
    assert report_errors(action) == 143
    assert capsys.readouterr().err.strip().splitlines() == ["error: terminated"]
