"""Faults, round two: temporary files of killed processes, readers naming their checkpoint, TensorBoard on
resume, generate's length limits, a deleted checkpoint named by the index, SIGTERM in compare and evaluate."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from conftest import REPO, run_here
from reproduce.errors import Terminated, report_errors
from reproduce.files import pyplot, replace_atomically, save_figure, write_atomic
from reproduce.main import main
from reproduce.rundir import RunDir

tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def tiny_run(tiny_book_run):
    """A book run of 4 tiny steps."""
    return tiny_book_run[0]


def _dead_pid():
    """The PID of a process that has ended."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


# ---------------------------------------------------------------- temporary files of killed processes
def test_a_write_removes_the_temporaries_of_dead_processes_only(tmp_path):
    dead = tmp_path / f".curves.png.{_dead_pid()}.k2j4x9q_.tmp"
    live = tmp_path / f".curves.png.{os.getppid()}.k2j4x9q_.tmp"          # pytest's parent: alive
    someone_elses = tmp_path / ".notes.tmp"                               # no PID: not ours
    for path in (dead, live, someone_elses):
        path.write_text("half")
    write_atomic(tmp_path / "report.md", "whole\n")
    assert not dead.exists() and live.exists() and someone_elses.exists()
    assert (tmp_path / "report.md").read_text() == "whole\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.md.")]   # its own renamed


def test_the_temporary_name_carries_the_writers_pid(tmp_path):
    seen = []
    replace_atomically(tmp_path / "x.txt", lambda f: seen.extend(p.name for p in tmp_path.iterdir()))
    assert re.fullmatch(rf"\.x\.txt\.{os.getpid()}\.\w+\.tmp", seen[0]), seen


def test_a_terminated_figure_leaves_no_temporary_file(tmp_path):
    plt = pyplot()
    figure = plt.figure()

    def killed_half_way(*args, **kwargs):
        args[0].write(b"\x89PNG half")
        raise Terminated()

    figure.savefig = killed_half_way
    with pytest.raises(Terminated):
        save_figure(figure, tmp_path / "curves.png")
    assert list(tmp_path.iterdir()) == []


def test_the_lock_holder_removes_tensorflow_and_dead_temporaries_of_its_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "ckpt" / "model-3_temp").mkdir(parents=True)               # Saver's folder, killed mid-save
    (run / "ckpt" / "model-3_temp" / "part-00000-of-00001.index").write_bytes(b"x")
    (run / "best").mkdir()
    (run / "best" / "model-2.data-00000-of-00001.tempstate123").write_bytes(b"x")
    dead = run / f".metrics.csv.{_dead_pid()}.abc.tmp"
    live = run / f".metrics.csv.{os.getppid()}.abc.tmp"
    dead.write_text("x")
    live.write_text("x")
    RunDir(run).lock()
    assert not (run / "ckpt" / "model-3_temp").exists() and not dead.exists() and live.exists()
    assert not list((run / "best").iterdir())


# ---------------------------------------------------------------- readers name their checkpoint
def test_generate_and_evaluate_name_the_checkpoint_they_use(tiny_run, grimm_dir, capsys):
    assert main(["generate", "--checkpoint", str(tiny_run), "--length", "5"]) == 0
    stderr = capsys.readouterr().err
    best = re.search(r"^using best/model-(\d+) \(step (\d+), valid perplexity \d+\.\d\d\)$", stderr, re.M)
    assert best and best[1] == best[2], stderr
    assert main(["evaluate", "--checkpoint", str(tiny_run / "ckpt" / "model-2"), "--stories-dir", str(grimm_dir),
                 "--files", "13"]) == 0
    assert "using ckpt/model-2 (step 2)\n" in capsys.readouterr().err


# ---------------------------------------------------------------- generate's lengths
@pytest.mark.parametrize("argv, fragments", [
    (["--sampler", "beam", "--length", "3"], ["--length 3", "--beam-length 5"]),
    (["--sampler", "beam", "--length", "6", "--beam-length", "7"], ["--length 6", "--beam-length 7"]),
    (["--length", "100001"], ["--length 100001", "100,000"]),
])
def test_generate_refuses_lengths_it_cannot_write(tiny_run, capsys, argv, fragments):
    assert main(["generate", "--checkpoint", str(tiny_run), *argv]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error:"), err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


# ---------------------------------------------------------------- TensorBoard after a resume
def _tensorboard_view(events_dir):
    """What TensorBoard shows, tag -> steps: its event files in order, each SessionLog START dropping the
    events at and after its step (event_accumulator's purge)."""
    shown = {}
    for path in sorted(events_dir.iterdir()):
        for event in tf1.train.summary_iterator(str(path)):
            if event.HasField("session_log") and event.session_log.status == tf1.SessionLog.START:
                shown = {tag: [s for s in steps if s < event.step] for tag, steps in shown.items()}
            for value in event.summary.value:
                shown.setdefault(value.tag, []).append(event.step)
    return shown


def test_a_resumed_run_shows_each_step_once_in_tensorboard(tiny_run, grimm_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for path in (run / "ckpt").glob("*-4.*"):                    # back to step 3: step 4 is trained again
        path.unlink()
    resumed = run_here("train", "--resume", "--run-dir", run, "--stories-dir", grimm_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list((run / "events").iterdir())) == 2
    assert _tensorboard_view(run / "events")["perplexity/valid"] == [1, 2, 3, 4]


# ---------------------------------------------------------------- the index names a deleted checkpoint
def test_a_deleted_checkpoint_named_by_the_index_falls_back_to_an_intact_one(tmp_path, capfd):
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "config.json").write_text('{"recipe": "shakespeare-char"}')
    with tf1.Graph().as_default():
        tf1.Variable([1.0], name="w")
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, str(run / "ckpt" / "model-20"), write_meta_graph=False,
                                   write_state=False)
    (run / "ckpt" / "checkpoint").write_text('model_checkpoint_path: "model-30"\n'
                                             'all_model_checkpoint_paths: "model-20"\n'
                                             'all_model_checkpoint_paths: "model-30"\n')
    capfd.readouterr()
    assert RunDir(run).checkpoint_for_generation(prefer_best=False) == run / "ckpt" / "model-20"
    err = capfd.readouterr().err
    assert err.startswith("warning:") and "model-30" in err and "model-20" in err, err
    assert len(err.strip().splitlines()) == 1 and "ERROR" not in err, err


# ---------------------------------------------------------------- SIGTERM in real processes
def _handles_sigterm(pid):
    """Whether process `pid` has installed a SIGTERM handler (the SigCgt mask of /proc/PID/status)."""
    status = open(f"/proc/{pid}/status").read()
    return bool(int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("signum, line, code", [(signal.SIGTERM, "error: terminated", 143),
                                               (signal.SIGINT, "error: interrupted", 130)])
def test_a_signal_that_a_c_extension_turns_into_another_exception_is_still_the_signal(signum, line, code, capsys,
                                                                                       monkeypatch):
    """TensorFlow's C code, interrupted by the handler's exception, raises a SystemError of its own."""
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.default_int_handler if s == signal.SIGINT
                        else signal.SIG_DFL)      # as in a terminal, even where pytest was started in the background
    def action():
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)
        except KeyboardInterrupt:
            raise SystemError("<built-in function __import__> returned a result with an exception set") from None
    assert report_errors(action) == code
    assert capsys.readouterr().err.strip().splitlines() == [line]
    def mistake():
        raise SystemError("a bug, with no signal")
    with pytest.raises(SystemError, match="a bug"):      # a real error keeps its traceback
        report_errors(mistake)


@pytest.mark.parametrize("command", ["compare", "evaluate"])
def test_sigterm_ends_compare_and_evaluate_with_one_line(tiny_run, grimm_dir, tmp_path, command):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = {"compare": ["compare", "--run", run],
            "evaluate": ["evaluate", "--checkpoint", run, "--stories-dir", grimm_dir]}[command]
    process = subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), *map(str, argv)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _handles_sigterm(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)                                               # into its work
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert [line for line in stderr.splitlines() if line.startswith("error")] == ["error: terminated"], stderr
    assert "Traceback" not in stderr
    assert not [p.name for p in run.rglob(".*.tmp")]


# ---------------------------------------------------------------- a light seed folder of `study --export`
def test_readers_on_a_light_seed_folder_say_what_it_is_and_what_to_do(tiny_run, grimm_dir, tmp_path, capsys):
    import json
    from reproduce.study import LIGHT_FILES
    export = tmp_path / "export"
    light = export / "seed-3"
    light.mkdir(parents=True)
    for name in LIGHT_FILES:
        if (tiny_run / name).is_file():
            shutil.copy(tiny_run / name, light / name)
    (light / "summary.json").write_text(json.dumps({"steps": 4}))
    (export / "study.json").write_text(json.dumps({"recipe": "book", "options": {"num_steps": 4}, "seeds": [3]}))
    for argv in (["generate", "--checkpoint", light, "--length", "5"],
                 ["evaluate", "--checkpoint", light, "--stories-dir", grimm_dir, "--files", "13"],
                 ["compare", "--run", light, "--out", tmp_path / "out"]):
        assert main([str(a) for a in argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "damaged" not in err, err
        assert f"{light}: a light seed folder exported by `study --export`" in err, err
        assert "`python reproduce/main.py study --recipe book --seeds 3 --num-steps 4`" in err
        assert str(export / "report.md") in err
    assert sorted(p.name for p in light.iterdir()) == sorted(n for n in LIGHT_FILES if (light / n).exists())
