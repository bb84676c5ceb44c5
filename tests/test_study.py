"""`study`: seeds as ordinary run folders, resumed and skipped, the band report and its computed verdict."""
import json
import signal
import subprocess
import sys
import time


from conftest import REPO, TINY, run_cli
from reproduce.study import parse_seeds, place


def test_seeds_and_the_verdict_are_computed():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("5,1-2,5") == [1, 2, 5]
    assert place(18.26, [16.9, 19.0, 21.4])["verdict"] == "inside: the book's 18.26 ranks 2 of 4"
    assert place(15.0, [16.9, 21.4])["verdict"] == "outside: the book's 15.00 is below all 2 seeds (16.90-21.40)"
    assert place(30.0, [16.9, 21.4])["rank"] == 3 and not place(30.0, [16.9, 21.4])["inside"]


def _study(grimm_dir, study_dir, *extra):
    return run_cli("study", "--recipe", "book", "--seeds", "0-1", "--jobs", "2", "--stories-dir", grimm_dir, *TINY,
                   "--study-dir", study_dir, *extra)


def test_a_study_trains_every_seed_reports_and_resumes_only_what_is_unfinished(grimm_dir, tmp_path):
    study_dir = tmp_path / "study"
    printed = _study(grimm_dir, study_dir, "--num-steps", "2", "--print-commands")
    assert printed.returncode == 0, printed.stderr
    commands = printed.stdout.strip().splitlines()
    assert len(commands) == 2 and all(" train --recipe book --seed " in c for c in commands)
    assert not study_dir.exists()                                  # printing trains nothing

    result = _study(grimm_dir, study_dir, "--num-steps", "2")
    assert result.returncode == 0, result.stderr
    assert "study 4/4 steps" in result.stdout
    for seed in (0, 1):
        config = json.loads((study_dir / f"seed-{seed}" / "config.json").read_text())
        assert config["seed"] == seed and config["num_nodes"] == 16   # the train options reached every seed
    report = json.loads((study_dir / "report.json").read_text())
    assert report["finished_seeds"] == [0, 1]
    valid = [json.loads((study_dir / f"seed-{s}" / "ckpt" / "state-2.json").read_text())["history"][1]
             ["valid_perplexity"] for s in (0, 1)]
    assert report["per_step"][1]["valid"]["min"] == min(valid) and report["per_step"][1]["valid"]["max"] == max(valid)
    assert report["verdict"].startswith("outside: the book's 18.26 is below all 2 seeds")   # a 2-step tiny model
    assert (study_dir / "band.png").stat().st_size > 10_000 and "Verdict: outside" in (study_dir / "report.md").read_text()

    before = (study_dir / "seed-0" / "metrics.csv").read_text()
    again = _study(grimm_dir, study_dir, "--num-steps", "2")
    assert again.returncode == 0 and "every seed has finished" in again.stdout, again.stderr
    assert (study_dir / "seed-0" / "metrics.csv").read_text() == before      # skipped, not retrained
    longer = _study(grimm_dir, study_dir, "--num-steps", "3", "--print-commands")
    assert longer.stdout.count("--resume") == 2                     # each seed continues from its checkpoint

    (study_dir / "report.md").unlink()
    merged = run_cli("study", "--report-only", study_dir)
    assert merged.returncode == 0 and (study_dir / "report.md").exists(), merged.stderr


def test_an_interrupted_study_leaves_every_seed_resumable(grimm_dir, tmp_path):
    study_dir = tmp_path / "study"
    process = subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), "study", "--recipe", "book",
                                "--seeds", "0-1", "--jobs", "2", "--stories-dir", str(grimm_dir), *TINY, "--num-steps", "3",
                                "--study-dir", str(study_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 180
    while not list(study_dir.glob("seed-*/ckpt/state-1.json")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 143, stderr
    assert "run the same study command again" in stderr and "Traceback" not in stderr
    result = run_cli("study", "--recipe", "book", "--seeds", "0-1", "--stories-dir", grimm_dir, *TINY,
                     "--num-steps", "3", "--study-dir", study_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads((study_dir / "report.json").read_text())["finished_seeds"] == [0, 1]
    assert not list(study_dir.glob("seed-*/ckpt/*.tmp"))
