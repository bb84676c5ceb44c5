"""Faults and bad input around training and generation: nothing lost, one-line errors, resumable runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY, run_cli, run_here
from test_train import _metrics, _samples, _train


@pytest.fixture(scope="module")
def reference(tiny_book_run):
    """An uninterrupted 4-step run (seed 3) that the interrupted ones must end equal to."""
    return tiny_book_run[0]


def _one_line_error(result, *fragments, code=None):
    assert result.returncode != 0 if code is None else result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    usage_error = lines[0].startswith("python reproduce/main.py ") and ": error: " in lines[0]    # argparse's
    assert len(lines) == 1 and (lines[0].startswith("error:") or usage_error), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _train_process(grimm_dir, run_dir, *extra, env=None):
    return subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), "train", "--stories-dir",
                             str(grimm_dir), *TINY, "--run-dir", str(run_dir), *extra],
                            env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ---------------------------------------------------------------- killed runs
def test_sigkill_in_the_middle_of_a_step_then_resume(grimm_dir, reference, tmp_path):
    run_dir = tmp_path / "run"
    # Many iterations per step so that the kill lands inside step 2's training.
    process = _train_process(grimm_dir, run_dir, "--num-steps", "4", "--seed", "3")
    deadline = time.monotonic() + 120
    while not (run_dir / "ckpt" / "state-1.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "training ended before step 1 was saved"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "ckpt" / "state-4.json").exists()
    result = _train(grimm_dir, run_dir, "--num-steps", "4", "--resume")
    assert "Resumed" in result.stdout
    assert _metrics(run_dir) == _metrics(reference)
    assert _samples(run_dir) == _samples(reference)


def test_sigkill_while_writing_a_checkpoint_then_resume(grimm_dir, reference, tmp_path):
    run_dir = tmp_path / "run"
    process = _train_process(grimm_dir, run_dir, "--num-steps", "4", "--seed", "3",
                             env={"REPRODUCE_CRASH_AT": "checkpoint:2"})
    process.wait(timeout=300)
    assert process.returncode == -signal.SIGKILL
    assert list((run_dir / "ckpt").glob("model-2.index")) and not (run_dir / "ckpt" / "state-2.json").exists()
    _train(grimm_dir, run_dir, "--num-steps", "4", "--resume")
    assert _metrics(run_dir) == _metrics(reference)
    assert _samples(run_dir) == _samples(reference)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(grimm_dir, reference, tmp_path, damage):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    data = next((run_dir / "ckpt").glob("model-4.data-*"))
    raw = bytearray(data.read_bytes())
    if damage == "truncate":
        data.write_bytes(raw[: len(raw) // 2])
    else:
        for i in range(len(raw) // 3, len(raw) // 3 + 64):
            raw[i] ^= 0xFF
        data.write_bytes(bytes(raw))
    result = _train(grimm_dir, run_dir, "--num-steps", "4", "--resume")
    assert "checkpoint of step 4" in result.stdout and "damaged" in result.stdout
    assert "Resumed" in result.stdout and "after step 3" in result.stdout
    assert _metrics(run_dir) == _metrics(reference)


# ---------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB tmpfs: writes fail with ENOSPC once it is full."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk, leave_bytes):
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave_bytes, 0))


def test_disk_full_while_writing_a_checkpoint(grimm_dir, reference, small_disk):
    run_dir = small_disk / "run"
    _train(grimm_dir, run_dir, "--num-steps", "1", "--seed", "3")
    before = {p.name: p.read_bytes() for p in (run_dir / "ckpt").iterdir()}
    _fill(small_disk, leave_bytes=4096)
    result = run_cli("train", "--stories-dir", grimm_dir, *TINY, "--run-dir", run_dir, "--num-steps", "4", "--resume")
    _one_line_error(result, "failed (no space left on device)", "free some space", "--resume")
    assert {p.name: p.read_bytes() for p in (run_dir / "ckpt").iterdir()} == before      # step 1 intact
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or "_temp" in p.name]
    (small_disk / "filler").unlink()
    _train(grimm_dir, run_dir, "--num-steps", "4", "--resume")
    assert _metrics(run_dir) == _metrics(reference)


def test_disk_full_while_writing_a_story(reference, small_disk):
    _fill(small_disk, leave_bytes=0)
    story = small_disk / "story.txt"
    result = run_here("generate", "--checkpoint", reference, "--length", "400", "--output", story)
    _one_line_error(result, str(story), "no space left on device", "nothing was written")
    assert not story.exists() and not list(small_disk.glob(".story.txt*"))


# ---------------------------------------------------------------- generate: bad input
def test_generate_bad_input(reference, tmp_path):
    _one_line_error(run_cli("generate", "--checkpoint", tmp_path / "missing"), "missing", code=1)   # a fresh process
    (tmp_path / "empty").mkdir()
    _one_line_error(run_here("generate", "--checkpoint", tmp_path / "empty"), "not a run folder", code=1)
    _one_line_error(run_here("generate", "--checkpoint", reference, "--length", "0"), "--length", code=2)
    _one_line_error(run_here("generate", "--checkpoint", reference, "--length", "-5"), "--length", code=2)
    _one_line_error(run_here("generate", "--checkpoint", reference, "--sampler", "nucleus"), "nucleus", code=2)
    _one_line_error(run_here("generate", "--checkpoint", reference, "--sampler", "temperature",
                             "--temperature", "0"), "--temperature", code=2)
    _one_line_error(run_here("generate", "--checkpoint", reference / "ckpt" / "model-99"), "model-99", code=1)
    debug = run_here("--debug", "generate", "--checkpoint", tmp_path / "empty")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_generate_from_a_folder_without_checkpoints(reference, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.json", "vocab.json"):
        shutil.copy(reference / name, run_dir / name)
    _one_line_error(run_cli("generate", "--checkpoint", run_dir), "no checkpoint", code=1)


@pytest.mark.parametrize("change", ["vocabulary", "recipe"])
def test_generate_with_a_checkpoint_of_another_run(reference, tmp_path, change):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    if change == "vocabulary":
        vocab = json.loads((run_dir / "vocab.json").read_text())
        vocab["bigrams"], vocab["counts"] = vocab["bigrams"][:-7], vocab["counts"][:-7]
        (run_dir / "vocab.json").write_text(json.dumps(vocab))
    else:
        config = json.loads((run_dir / "config.json").read_text())
        config.update(recipe="book-gru", cell="gru")
        (run_dir / "config.json").write_text(json.dumps(config))
    run = run_cli if change == "vocabulary" else run_here           # a fresh process, and this one
    _one_line_error(run("generate", "--checkpoint", run_dir), "cannot restore", "another run", code=1)


def test_generate_maps_unknown_primer_characters_to_unk(reference):
    result = run_here("generate", "--checkpoint", reference, "--length", "5", "--prime", "the ☃☃ king")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "UNK" in result.stderr
    assert result.stdout.startswith("the UNK")


# ---------------------------------------------------------------- train: configurations that cannot work
@pytest.mark.parametrize("options,fragment", [
    (["--num-files", "40"], "missing"),                                    # the folder holds 12 stories
    (["--num-unrollings", "20000"], "--num-unrollings 20000"),
    (["--batch-size", "3000"], "--batch-size 3000"),
    (["--steps-per-document", "900"], "validation needs"),
    (["--docs-per-step", "13"], "--docs-per-step 13"),
])
def test_train_rejects_a_configuration_that_cannot_work(grimm_dir, tmp_path, options, fragment):
    stories = tmp_path / "stories"
    stories.mkdir()
    for i in range(1, 13):
        shutil.copy(grimm_dir / f"{i:03d}.txt", stories / f"{i:03d}.txt")
    result = run_here("train", "--stories-dir", stories, *TINY, "--run-dir", tmp_path / "run", *options)
    _one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()                 # rejected before anything was built or written


def test_a_second_process_is_refused_and_a_sigkilled_writer_leaves_no_stale_lock(grimm_dir, tmp_path):
    """Two real processes on one run folder: the second is refused naming the first; SIGKILL frees the folder."""
    run_dir = tmp_path / "run"
    first = _train_process(grimm_dir, run_dir, "--num-steps", "400")
    deadline = time.monotonic() + 120
    while not (run_dir / "ckpt" / "state-1.json").exists():
        assert first.poll() is None and time.monotonic() < deadline, "training ended before step 1 was saved"
        time.sleep(0.05)
    second = run_here("train", "--stories-dir", grimm_dir, *TINY, "--num-steps", "400", "--run-dir", run_dir,
                      "--resume")                                  # this process, refused by the lock of the first
    _one_line_error(second, f"is being trained by process {first.pid}", code=2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    resumed = run_here("train", "--stories-dir", grimm_dir, *TINY, "--num-steps", "2", "--run-dir", run_dir,
                       "--resume")
    assert resumed.returncode == 0 and "Resumed" in resumed.stdout, resumed.stderr
