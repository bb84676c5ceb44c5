"""`study`: seeds as ordinary run folders, resumed and skipped, the band report and its computed verdict; finished
seeds kept light (summary.json), exported and continued from."""
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY, run_here
from reproduce.main import main
from reproduce.errors import UserError
from reproduce.study import default_jobs, parse_seeds, place, record_layout, steps_outside


def test_seeds_and_the_verdict_are_computed():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("5,1-2,5") == [1, 2, 5]
    assert place(18.26, [16.9, 19.0, 21.4])["verdict"] == "inside: the book's 18.26 ranks 2 of 4"
    assert place(15.0, [16.9, 21.4])["verdict"] == "outside: the book's 15.00 is below all 2 seeds (16.90-21.40)"
    assert place(30.0, [16.9, 21.4])["rank"] == 3 and not place(30.0, [16.9, 21.4])["inside"]


def test_the_steps_where_the_books_curve_leaves_the_band_are_counted():
    def row(step, low, high, n=3):
        return {"step": step, "train": {"min": low, "max": high, "n": n}, "valid": {"min": 1.0, "max": 99.0, "n": n}}
    book = [{"step": s, "train_perplexity": 10.0, "valid_perplexity": 50.0} for s in (1, 2, 3, 27)]
    outside = steps_outside([row(1, 9.0, 11.0), row(2, 10.5, 12.0), row(3, 8.0, 9.5), row(4, 1.0, 2.0)], book)
    assert outside["train"] == {"steps": [2, 3], "of": 3, "expected": 1.5}       # 3 steps x 2 / (3 seeds + 1)
    assert outside["valid"]["steps"] == []


def test_the_default_jobs_are_the_layout_bench_measured_on_this_machine(tmp_path):
    record = tmp_path / "checkpoints" / "study-layout.json"
    assert default_jobs(record)[0] == 1 and "bench" in default_jobs(record)[1]      # nothing measured yet
    record_layout(2, {"one process on every core": 55.5, "one process per core": 59.6}, record)
    assert default_jobs(record) == (2, f"the faster layout `bench` measured on this machine, {record}")
    elsewhere = {**json.loads(record.read_text()), "cpu": "Another CPU"}
    record.write_text(json.dumps(elsewhere))
    assert default_jobs(record)[0] == 1 and "another machine (Another CPU" in default_jobs(record)[1]
    record.write_text(json.dumps({"cpu": "Another CPU"}))
    with pytest.raises(UserError, match=r"study-layout.json: no field 'jobs'.*give --jobs"):
        default_jobs(record)


def _study(grimm_dir, study_dir, *extra):
    """`study` in this process; its seeds train in processes of their own, as always."""
    return run_here("study", "--recipe", "book", "--seeds", "0-1", "--jobs", "2", "--stories-dir", grimm_dir, *TINY,
                    "--study-dir", study_dir, *extra)


@pytest.fixture(scope="module")
def finished_study(grimm_dir, tmp_path_factory):
    """A tiny study of seeds 0-1, 2 steps each, trained once for the tests below: (its folder, its output)."""
    study_dir = tmp_path_factory.mktemp("finished") / "study"
    result = _study(grimm_dir, study_dir, "--num-steps", "2")
    assert result.returncode == 0, result.stderr
    return study_dir, result


def test_a_study_trains_every_seed_reports_and_resumes_only_what_is_unfinished(grimm_dir, finished_study, tmp_path):
    printed = _study(grimm_dir, tmp_path / "study", "--num-steps", "2", "--print-commands")
    assert printed.returncode == 0, printed.stderr
    commands = printed.stdout.strip().splitlines()
    assert len(commands) == 2 and all(" train --recipe book --seed " in c for c in commands)
    assert not (tmp_path / "study").exists()                       # printing trains nothing

    study_dir, result = finished_study
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
    (study_dir / "seed-0" / "summary.json").unlink()    # computed again, from the checkpoints
    merged = run_here("study", "--report-only", study_dir)
    assert merged.returncode == 0 and (study_dir / "report.md").exists(), merged.stderr
    assert (study_dir / "seed-0" / "summary.json").exists()
    assert json.loads((study_dir / "report.json").read_text()) == report        # the same as from the summaries


def _without_path(report):
    return {key: value for key, value in report.items() if key != "study"}


def test_finished_seeds_are_kept_light_exported_and_continued_with_only_new_seeds(grimm_dir, finished_study,
                                                                                   tmp_path, capsys):
    study_dir, _ = finished_study
    for seed in (0, 1):                                 # written as each seed finished
        summary = json.loads((study_dir / f"seed-{seed}" / "summary.json").read_text())
        assert (summary["recipe"], summary["seed"], summary["steps"], summary["options"]["num_nodes"]) == \
            ("book", seed, 2, 16)
        history = json.loads((study_dir / f"seed-{seed}" / "ckpt" / "state-2.json").read_text())["history"]
        assert [row["valid_perplexity"] for row in summary["comparison"]["learning_curves"]["ours_per_step"]] == \
            [row["valid_perplexity"] for row in history]
        assert summary["comparison"]["story"]["our_stories"] and summary["comparison"]["environment"]
    from_summaries = json.loads((study_dir / "report.json").read_text())

    assert main(["study", "--report-only", str(study_dir), "--export", str(study_dir / ".")]) == 2
    refused = capsys.readouterr().err.strip().splitlines()
    assert len(refused) == 1 and "is the study folder itself" in refused[0]

    exported = tmp_path / "docs" / "study"
    assert main(["study", "--report-only", str(study_dir), "--export", str(exported)]) == 0
    for seed in (0, 1):                                 # light: no checkpoint, no vocabulary, no events
        assert sorted(p.name for p in (exported / f"seed-{seed}").iterdir()) == \
            ["config.json", "environment.json", "metrics.csv", "samples.txt", "summary.json"]
    (exported / "report.json").unlink()
    assert main(["study", "--report-only", str(exported)]) == 0
    assert _without_path(json.loads((exported / "report.json").read_text())) == _without_path(from_summaries)

    continued = tmp_path / "continued"                  # the export copied back as a study folder
    shutil.copytree(exported, continued)
    command = ["study", "--recipe", "book", "--stories-dir", str(grimm_dir), *TINY, "--study-dir", str(continued)]
    capsys.readouterr()
    assert main(command + ["--num-steps", "2", "--seeds", "0-1", "--print-commands"]) == 0
    assert capsys.readouterr().out == ""                # the light seeds have finished
    assert main(command + ["--num-steps", "2", "--seeds", "0-2", "--print-commands"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and " --seed 2 " in printed[0] and "--resume" not in printed[0]
    assert main(command + ["--num-steps", "3", "--seeds", "0-1", "--print-commands"]) == 2
    assert "a light seed folder of 2 steps" in capsys.readouterr().err      # no checkpoint to continue from
    assert main(command + ["--num-steps", "2", "--num-nodes", "32", "--print-commands"]) == 2
    assert "--num-nodes 32 contradicts" in capsys.readouterr().err

    light_files = {path: path.read_bytes() for path in continued.glob("seed-*/*")}
    assert main(command + ["--num-steps", "2", "--seeds", "0-2"]) == 0
    trained = capsys.readouterr().out
    assert "seed 2: step 2/2" in trained and "seed 0:" not in trained and "seed 1:" not in trained
    assert all(path.read_bytes() == data for path, data in light_files.items())     # not retrained
    assert not (continued / "seed-0" / "ckpt").exists() and (continued / "seed-2" / "summary.json").exists()
    assert json.loads((continued / "report.json").read_text())["finished_seeds"] == [0, 1, 2]


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
    result = run_here("study", "--recipe", "book", "--seeds", "0-1", "--jobs", "2", "--stories-dir", grimm_dir, *TINY,
                      "--num-steps", "3", "--study-dir", study_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads((study_dir / "report.json").read_text())["finished_seeds"] == [0, 1]
    assert not list(study_dir.glob("seed-*/ckpt/*.tmp"))


def test_studies_of_several_recipes_are_compared_on_bands(finished_study, tmp_path, capsys):
    study_dir, _ = finished_study
    low, high, out = tmp_path / "low", tmp_path / "high", tmp_path / "comparison"
    assert main(["study", "--report-only", str(study_dir), "--export", str(low)]) == 0
    shutil.copytree(low, high)
    bests = []
    for seed in (0, 1):                                  # the same seeds, ten times the valid perplexity
        path = high / f"seed-{seed}" / "summary.json"
        summary = json.loads(path.read_text())
        rows = summary["comparison"]["learning_curves"]["ours_per_step"]
        bests.append(min(row["valid_perplexity"] for row in rows))
        for row in rows:
            row["valid_perplexity"] *= 10
        path.write_text(json.dumps(summary))
    (high / "report.json").unlink()                      # written again from the summaries
    capsys.readouterr()

    assert main(["study", "--compare", str(low), str(high), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best valid perplexity: apart: every low seed is below every high seed" in printed
    assert "low lower for 2 of the 2 seeds both have" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    low_bands, high_bands = (study["bands"]["best valid perplexity"] for study in comparison["studies"])
    assert low_bands["median"] == statistics.median(bests) and low_bands["n"] == 2
    assert high_bands["min"] == pytest.approx(10 * min(bests)) and high_bands["max"] == pytest.approx(10 * max(bests))
    assert comparison["book"]["book LSTM"]["best valid perplexity"] == pytest.approx(18.26, abs=0.005)
    assert comparison["book"]["book GRU"]["step of the best valid perplexity"] == 20
    assert "| low | book (lstm) | random | 2 |" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").stat().st_size > 10_000

    for argv, fragment in ((["--compare", str(low), "--out", str(out)], "at least two study folders"),
                           (["--compare", str(low), str(tmp_path / "nothing"), "--out", str(out)],
                            f"{tmp_path / 'nothing'}: not a study folder"),
                           (["--compare", str(low), str(high)], "needs --out DIR"),
                           (["--report-only", str(low), "--out", str(out)], "--out is the folder of --compare")):
        assert main(["study", *argv]) == 2
        refused = capsys.readouterr().err.strip().splitlines()
        assert len(refused) == 1 and fragment in refused[0], refused
