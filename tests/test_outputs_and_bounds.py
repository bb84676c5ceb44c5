"""Outputs by files.py's one rule (special paths never replaced), one line on every disk error, bounds of
number options and threads."""
import argparse
import contextlib
import errno
import os
import stat
import subprocess
import threading
import time

import pytest

from conftest import REPO
from reproduce import files, main
from reproduce.argtypes import THREADS_PER_CORE, available_cores, at_least, positive, probability, thread_count
from reproduce.errors import DiskError, UserError, disk_failure, write_failed


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".part")))


# ---------------------------------------------------------------- special paths
def test_dev_null_is_written_through_and_stays_a_device():
    files.write_output("/dev/null", "text")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("into", ["file", "pipe"])
def test_dev_stdout_is_the_processs_own_output_in_order(tmp_path, into):
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from reproduce.files import write_output; "
              "print('before'); write_output('/dev/stdout', 'the story'); print('after')")
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        process = subprocess.run(["python", "-c", script, str(REPO)], text=True, timeout=120, stderr=subprocess.PIPE,
                                 stdout=f if into == "file" else subprocess.PIPE)
    assert process.returncode == 0, process.stderr
    text = out.read_text() if into == "file" else process.stdout
    assert text == "before\nthe story\nafter\n"


def test_a_symlink_to_dev_full_is_a_one_line_error_and_both_stay(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to("/dev/full")
    with pytest.raises(DiskError, match=r"out.txt: cannot write it \(no space left on device\)"):
        files.write_output(link, "text")
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert _leftovers(tmp_path) == []


def test_a_symlink_to_a_regular_file_writes_its_target_and_stays_a_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target.name)
    files.write_output(link, "new")
    assert link.is_symlink() and target.read_text() == "new\n"
    assert _leftovers(tmp_path) == []


def test_a_fifo_is_written_through_to_its_reader(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    ready = threading.Event()

    def read():
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)     # a reader is present before the write starts
        ready.set()
        chunks, give_up = [], time.monotonic() + 10
        while time.monotonic() < give_up:                   # b"" before the writer opens, b"" again after it closes
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:                         # the writer is there, its text not yet
                chunk = None
            if chunk:
                chunks.append(chunk)
            elif chunk == b"" and chunks:
                break
            else:
                time.sleep(0.01)
        os.close(fd)
        received.append(b"".join(chunks))
    reader = threading.Thread(target=read)
    reader.start()
    ready.wait(10)
    files.write_output(fifo, "through the pipe")
    reader.join(10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_fifo_without_a_reader_is_an_error_not_a_wait(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="FIFO .* that no process reads"):
        files.write_json(fifo, {"a": 1})
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_is_refused_and_kept(tmp_path):
    folder = tmp_path / "report.json"
    folder.mkdir()
    (folder / "inside").write_text("kept")
    with pytest.raises(UserError, match="report.json: a folder, not a file; nothing was written"):
        files.write_json(folder, {"a": 1})
    assert (folder / "inside").read_text() == "kept"


def test_a_socket_is_refused_and_kept(tmp_path):
    import socket
    path = tmp_path / "out.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(UserError, match="out.sock: a socket, not a file"):
            files.write_output(path, "text")
        assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_generate_output_dev_full_is_one_line_and_dev_full_survives(tiny_book_run):
    run_dir = tiny_book_run[0]
    result = subprocess.run(["python", str(REPO / "reproduce" / "main.py"), "generate", "--checkpoint", str(run_dir),
                             "--length", "5", "--output", "/dev/full"], capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "/dev/full: cannot write it (no space left on device)" in errors[0]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# ---------------------------------------------------------------- disk errors, one line each
@contextlib.contextmanager
def small_tmpfs(folder, size="64k", read_only=False):
    """A tmpfs of `size` mounted on `folder` (needs root); skips the test where it cannot be mounted."""
    folder.mkdir(exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path):
    with small_tmpfs(tmp_path / "small") as disk:
        (disk / "kept.txt").write_text("previous\n")
        with pytest.raises(DiskError, match=r"kept.txt: cannot write it \(no space left on device\); nothing was "
                                            "written: free some space"):
            files.write_atomic(disk / "kept.txt", "x" * 200_000)
        assert (disk / "kept.txt").read_text() == "previous\n" and _leftovers(disk) == []


def test_a_read_only_file_system_is_named_as_such(tmp_path):
    with small_tmpfs(tmp_path / "ro", read_only=True) as disk:
        with pytest.raises(DiskError, match=r"cannot write it \(read-only file system\).*write elsewhere"):
            files.write_csv(disk / "m.csv", ["a"], [{"a": 1}])


def test_png_on_a_read_only_file_system_does_not_say_free_space(tmp_path):
    plt = files.pyplot()
    figure = plt.figure()
    with small_tmpfs(tmp_path / "ro", read_only=True) as disk:
        with pytest.raises(DiskError) as caught:
            files.save_figure(figure, disk / "f.png")
    assert "read-only file system" in str(caught.value) and "free" not in str(caught.value)


def test_a_name_too_long_is_named_as_such(tmp_path):
    with pytest.raises(DiskError, match=r"cannot write it \(file name too long\).*shorter name"):
        files.write_atomic(tmp_path / ("n" * 300), "text")
    assert _leftovers(tmp_path) == []


def test_a_name_that_fits_gets_a_temporary_that_fits(tmp_path):
    name = "n" * 250                                # the file fits the 255 limit; its temporary must too
    files.write_atomic(tmp_path / name, "text")
    assert (tmp_path / name).read_text() == "text"


def test_tensorflow_errors_are_read_for_their_errno():
    class SaverError(Exception):                    # as tf.errors.ResourceExhaustedError words a full disk
        message = "Graph execution error:\n\n/run/ckpt/model-3.data-00000-of-00001.tempstate1; No space left on device"
    assert disk_failure(SaverError())[0] == "no space left on device"
    line = str(write_failed("/x/model", OSError(errno.EROFS, "Read-only file system")))
    assert line.startswith("/x/model: cannot write it (read-only file system)")


# ---------------------------------------------------------------- bounds
@pytest.mark.parametrize("parse", [positive(float), at_least(0.0, float), probability])
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "Infinity"])
def test_float_options_are_finite(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match="finite|at least|above 0"):
        parse(text)


def test_threads_are_capped_at_parse_time():
    cap = THREADS_PER_CORE * available_cores()
    assert thread_count(str(cap)) == cap
    for text in (str(cap + 1), "20000", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            thread_count(text)


@pytest.mark.parametrize("argv, env, fragment", [
    (["train", "--learning-rate", "inf"], {}, "--learning-rate: must be a finite number"),
    (["train", "--clip-norm", "nan"], {}, "--clip-norm: must be a finite number"),
    (["train", "--threads", "20000"], {}, "--threads: must be at most"),
    (["generate", "--checkpoint", "x", "--temperature", "inf"], {}, "--temperature: must be a finite number"),
    (["generate", "--checkpoint", "x"], {"REPRODUCE_THREADS": "20000"}, "$REPRODUCE_THREADS=20000: must be at most"),
])
def test_bounds_are_one_line_usage_errors(argv, env, fragment, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert run_main(argv) == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in stderr, lines


def run_main(argv):
    """The command line in this process: its exit status, also when argparse refuses a value."""
    try:
        return main.main(argv)
    except SystemExit as refused:
        return refused.code


@pytest.mark.parametrize("where, fragment", [
    ("missing/bench.json", "(no such file or folder)"),
    ("folder", "a folder, not a file"),
    ("n" * 300, "(file name too long)"),
])
def test_bench_output_is_checked_before_the_benchmark_runs(tmp_path, capsys, where, fragment):
    from reproduce.main import main
    (tmp_path / "folder").mkdir()
    assert main(["bench", "--output", str(tmp_path / where), "--stories-dir", str(tmp_path / "no-stories")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and "no-stories" not in err, err


@pytest.mark.parametrize("num_nodes", ["200000", "100000000000"])
def test_a_model_larger_than_memory_is_refused_before_any_graph(tmp_path, grimm_dir, num_nodes, capsys):
    run_dir = tmp_path / "run"
    assert run_main(["train", "--recipe", "book", "--num-files", "12", "--stories-dir", str(grimm_dir),
                     "--run-dir", str(run_dir), "--num-nodes", num_nodes]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"--num-nodes {num_nodes}" in lines[0] and "GiB of memory here" in lines[0]
    assert not run_dir.exists()
