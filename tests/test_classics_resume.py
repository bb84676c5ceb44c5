"""Exact resume of the classic recipes: a run killed after a checkpoint, then resumed with --resume, ends with
the metrics, samples and final weights of a run never interrupted; and the one-line refusals of --resume."""
import json
import signal

import numpy as np
import pytest
import tensorflow as tf

from reproduce import main
from reproduce.classics import common
from reproduce.session import THREADS_ENV
from tests.conftest import run_cli
from tests.test_classics import SMALL_AESOP, SMALL_CHAR, SMALL_SHAKESPEARE, read_metrics
from tests.test_classics import shakespeare_file  # noqa: F401  (a fixture, used by name)

WALL_CLOCK = {"seconds", "chars_per_second", "windows_per_second"}
# A checkpoint every 10 progress lines: at steps 10, 20 and 30.
RESUME_SHAKESPEARE = [*SMALL_SHAKESPEARE, "--display-step", "1"]
RESUME_CONTEXT = ["--num-steps", "200", "--num-nodes", "16", "--num-unrollings", "12", "--display-step", "50"]
# 8 batches an epoch, 20 steps: a checkpoint every 2 steps, the one of step 10 in the middle of the second epoch.
RESUME_CHAR = [*SMALL_CHAR, "--batch-size", "128"]


def train_here(*args):
    """`python reproduce/main.py train ARGS` in this process, on one thread; its exit status."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(THREADS_ENV, "1")
        return main.main(["train", *map(str, args)])


def train_killed(crash_at, *args):
    """`train ARGS` in a fresh process on one thread, SIGKILLed at the fault point `crash_at`."""
    killed = run_cli("train", *args, env={"REPRODUCE_CRASH_AT": crash_at, THREADS_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return killed


def metrics_of(csv_file):
    """The rows of a metrics file without its wall-clock columns."""
    return [{key: value for key, value in row.items() if key not in WALL_CLOCK} for row in read_metrics(csv_file)]


def metrics(run):
    return metrics_of(run / "metrics.csv")


def weights(run, step):
    reader = tf.compat.v1.train.load_checkpoint(str(run / "ckpt" / f"model-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assert_same_run(resumed, reference, final_step, files=("samples.txt",)):
    assert metrics(resumed) == metrics(reference) and len(metrics(reference)) > 2
    for name in files:
        assert (resumed / name).read_text() == (reference / name).read_text(), name
    mine, theirs = weights(resumed, final_step), weights(reference, final_step)
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    kept = sorted(p.name for p in (resumed / "ckpt").iterdir())
    assert kept == sorted(p.name for p in (reference / "ckpt").iterdir())      # no leftover of the kill
    assert f'model_checkpoint_path: "model-{final_step}"' in (resumed / "ckpt" / "checkpoint").read_text()


@pytest.fixture(scope="module")
def aesop_reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("aesop") / "reference"
    assert train_here("--recipe", "aesop-word", "--run-dir", run, *SMALL_AESOP) == 0
    return run


# ---------------------------------------------------------------- killed, resumed, the same run
def test_shakespeare_char_killed_while_saving_resumes_with_its_carried_state(tmp_path, shakespeare_file, capsys):
    options = ["--recipe", "shakespeare-char", "--text-file", shakespeare_file, *RESUME_SHAKESPEARE]
    run, reference = tmp_path / "run", tmp_path / "reference"
    train_killed("checkpoint:20", *options, "--run-dir", run)     # the weights of step 20 written, not its state
    assert (run / "ckpt" / "model-20.index").exists() and not (run / "ckpt" / "state-20.json").exists()
    assert not (run / "samples.txt").exists()
    assert train_here(*options, "--run-dir", run, "--resume") == 0
    assert f"Resumed {run} after step 10 of 30" in capsys.readouterr().out
    assert train_here(*options, "--run-dir", reference) == 0
    assert_same_run(run, reference, 30)


def test_aesop_word_killed_while_saving_resumes_its_walk(tmp_path, aesop_reference, capsys):
    run = tmp_path / "run"
    train_killed("checkpoint:200", "--recipe", "aesop-word", "--run-dir", run, *SMALL_AESOP)
    assert [r["iteration"] for r in read_metrics(run / "metrics.csv")] == ["100", "200"]
    assert train_here("--recipe", "aesop-word", "--run-dir", run, "--resume") == 0     # options from config.json
    assert f"Resumed {run} after step 100 of 300" in capsys.readouterr().out
    assert_same_run(run, aesop_reference, 300)


def test_aesop_context_killed_after_a_checkpoint_resumes_its_offsets(tmp_path, capsys):
    options = ["--recipe", "aesop-context", *RESUME_CONTEXT]
    run, reference = tmp_path / "run", tmp_path / "reference"
    train_killed("aesop-context:100", *options, "--run-dir", run)     # right after the whole checkpoint of 100
    assert train_here("--run-dir", run, "--resume") == 0              # the recipe, too, from config.json
    assert f"Resumed {run} after step 100 of 200" in capsys.readouterr().out
    assert train_here(*options, "--run-dir", reference) == 0
    assert_same_run(run, reference, 200)


def test_compare_cells_killed_in_its_second_cell_resumes_it_and_trains_the_third(tmp_path, shakespeare_file,
                                                                                  capsys):
    options = ["--compare-cells", "--text-file", shakespeare_file, *RESUME_CHAR]
    top, reference = tmp_path / "cells", tmp_path / "reference"
    train_killed("char-lstm:10", "--recipe", "char-lstm", *options, "--run-dir", top)
    assert (top / "char-rnn" / "context_probe.csv").exists() and not (top / "char-gru").exists()
    assert not (top / "cell_comparison.csv").exists()
    # Any char-* recipe resumes the comparison; its options come from comparison.json.
    assert train_here("--recipe", "char-gru", "--compare-cells", "--run-dir", top, "--resume") == 0
    out = capsys.readouterr().out
    assert f"{top / 'char-rnn'} has finished" in out and f"Resumed {top / 'char-lstm'} after step 10 of 20" in out
    assert train_here("--recipe", "char-lstm", *options, "--run-dir", reference) == 0
    capsys.readouterr()
    for cell in ("char-rnn", "char-lstm", "char-gru"):
        assert_same_run(top / cell, reference / cell, 20, files=("samples.txt", "context_probe.csv"))
        assert json.loads((top / cell / "best" / "best.json").read_text()) == \
            json.loads((reference / cell / "best" / "best.json").read_text())
    assert metrics_of(top / "cell_comparison.csv") == metrics_of(reference / "cell_comparison.csv")
    assert (top / "context_probe.csv").read_text() == (reference / "context_probe.csv").read_text()
    assert train_here("--recipe", "char-lstm", "--compare-cells", "--run-dir", top, "--resume") == 0
    assert capsys.readouterr().out.strip().splitlines() == \
        [f"{top}: the cell comparison has finished (cell_comparison.csv written); nothing to resume"]


def test_ctrl_c_names_the_resume_command_which_ends_the_run(tmp_path, aesop_reference, monkeypatch, capsys):
    def ctrl_c(name, step):
        if (name, step) == ("aesop-word", 200):
            raise KeyboardInterrupt
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(common, "crash_point", ctrl_c)
        assert train_here("--recipe", "aesop-word", "--run-dir", run, *SMALL_AESOP) == 130
    error = capsys.readouterr().err.strip()
    command = f"python reproduce/main.py train --recipe aesop-word --resume --run-dir {run}"
    assert error.splitlines() == [error] and "step 200 of 300" in error and f"`{command}`" in error
    assert train_here(*command.split()[3:]) == 0
    assert_same_run(run, aesop_reference, 300)


def test_a_run_stopped_before_its_first_checkpoint_is_resumed_from_the_start(tmp_path, aesop_reference, capsys):
    """What the interrupt's message says (`start it again with ... --resume`) works for a classic as for the book."""
    run = tmp_path / "no-checkpoint"
    run.mkdir()
    for name in ("config.json", "vocab.json"):                 # what a run holds before its first checkpoint
        (run / name).write_text((aesop_reference / name).read_text())
    assert train_here("--recipe", "aesop-word", "--run-dir", run, "--resume") == 0
    assert "no checkpoint yet (the run stopped before its first one); training it from the start" in \
        capsys.readouterr().out
    assert metrics(run) == metrics(aesop_reference)


# ---------------------------------------------------------------- what --resume refuses
def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("error: ") and "Traceback" not in err, err
    assert all(fragment in err for fragment in fragments), err


def test_resume_refusals_are_one_line_and_change_nothing(tmp_path, aesop_reference, capsys):
    def files_of(run):                        # what the run holds (.lock is the writers' lock, not the run's)
        return sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*") if p.name != ".lock")
    before = files_of(aesop_reference)
    book, comparison = tmp_path / "book", tmp_path / "comparison"
    for folder in (book, comparison):
        folder.mkdir()
    (book / "config.json").write_text(json.dumps({"recipe": "book", "num_steps": 26}))
    (comparison / "comparison.json").write_text(json.dumps({"runs": ["char-rnn"], "options": {}, "finished": False}))
    refusals = [
        (["--recipe", "aesop-word"], ["--resume needs --run-dir"]),
        (["--recipe", "aesop-word", "--run-dir", tmp_path / "absent"], ["absent: no such run folder"]),
        (["--recipe", "aesop-word", "--run-dir", tmp_path], ["not a run folder (no config.json)"]),
        (["--recipe", "shakespeare-char", "--run-dir", aesop_reference],
         ["holds a run of recipe aesop-word, not shakespeare-char", "--recipe aesop-word"]),
        (["--recipe", "aesop-context", "--run-dir", book], ["holds a run of recipe book", "--recipe book"]),
        (["--recipe", "aesop-word", "--run-dir", aesop_reference, "--num-nodes", "64"],
         ["--num-nodes 64 contradicts", "num_nodes 32"]),
        (["--recipe", "char-rnn", "--run-dir", comparison], ["holds a cell comparison", "--compare-cells"]),
        (["--recipe", "char-rnn", "--compare-cells", "--run-dir", aesop_reference], ["holds no cell comparison"]),
    ]
    for options, fragments in refusals:
        assert train_here(*options, "--resume") == 2, options
        one_line_error(capsys, *fragments)
    assert sorted(p.name for p in book.iterdir()) == ["config.json"]
    assert train_here("--recipe", "aesop-word", "--run-dir", aesop_reference) == 2          # without --resume
    one_line_error(capsys, "already holds a run", "--resume")
    # A finished run: one line, exit 0, nothing rewritten.
    assert train_here("--recipe", "aesop-word", "--run-dir", aesop_reference, "--resume", *SMALL_AESOP) == 0
    assert capsys.readouterr().out.strip().splitlines() == \
        [f"{aesop_reference} has finished: all 300 steps trained and its results written; nothing to resume"]
    assert files_of(aesop_reference) == before
