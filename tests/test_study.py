"""`study`: seeds as ordinary run folders, resumed and skipped, the band report and its computed verdict; finished
seeds kept light (summary.json), exported and continued from; a word recipe studied through the same table."""
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time

import pytest

from conftest import REPO, SHARED, TINY, run_here
from http_server import OK, StoryServer
from reproduce import text_metrics, word_runs
from reproduce.book_record import printed_curve, printed_word_steps
from reproduce.evaluate import evaluate
from reproduce.main import main
from reproduce.errors import UserError
from reproduce.recipes import recipe_config, tiny_options
from reproduce.study import default_jobs, fetch_shared_files, parse_seeds, record_layout
from reproduce.study_report import place, steps_outside


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
    assert default_jobs(record) == (2, f"the faster layout `bench` measured where this study runs, {record}")
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
    book_best = min(row["valid_perplexity"] for row in printed_curve("lstm")[:2])      # the 2 steps both have
    assert report["verdict"].startswith(f"outside: the book's {book_best:.2f} is below all 2 seeds")  # a tiny model
    assert (report["printed_steps"], report["compared_steps"]) == (26, 2)
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
    assert "terminated; every seed keeps its last checkpoint: run the same study command again" in stderr
    assert "Traceback" not in stderr
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
    assert list(comparison["book"]) == ["book LSTM"]            # each study's own printed run: no GRU study here
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


# ---------------------------------------------------------------- faults: stale reports, odd seeds, bounds, disks
def _one_line(capsys, *fragments):
    """The one `error:` line the command printed on stderr, holding every fragment."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0], lines
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def light_study(finished_study, tmp_path_factory):
    """The finished study exported: light seed folders 0 and 1 and their report. Tests change copies of it."""
    exported = tmp_path_factory.mktemp("light") / "study"
    assert main(["study", "--report-only", str(finished_study[0]), "--export", str(exported)]) == 0
    return exported


def _copy(light_study, tmp_path, name):
    shutil.copytree(light_study, tmp_path / name)
    return tmp_path / name


def _edit_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def test_a_report_older_than_its_seed_folders_is_written_again(light_study, tmp_path, capsys):
    stale, other, out = _copy(light_study, tmp_path, "stale"), _copy(light_study, tmp_path, "other"), tmp_path / "out"

    def seed_1_unfinished(report):              # as when seed 1 finished through --print-commands after the report
        report["finished_seeds"] = [0]
        del report["figures_by_seed"]["1"]
    _edit_json(stale / "report.json", seed_1_unfinished)
    capsys.readouterr()
    assert main(["study", "--compare", str(stale), str(other), "--out", str(out)]) == 0
    assert "report.json does not match its seed folders (finished_seeds [0]" in capsys.readouterr().out
    assert json.loads((out / "comparison.json").read_text())["studies"][0]["seeds"] == [0, 1]
    assert json.loads((stale / "report.json").read_text())["finished_seeds"] == [0, 1]

    _edit_json(stale / "report.json", lambda report: report.update(figures_by_seed={}))
    assert main(["study", "--compare", str(stale), str(other), "--out", str(out)]) == 0
    assert "figures_by_seed of seeds none (the finished seeds: 0, 1)" in capsys.readouterr().out
    assert len(json.loads((stale / "report.json").read_text())["figures_by_seed"]) == 2

    _edit_json(stale / "report.json", seed_1_unfinished)
    assert main(["study", "--report-only", str(stale)]) == 0
    assert json.loads((stale / "report.json").read_text())["finished_seeds"] == [0, 1]


def test_a_seed_unlike_the_others_is_refused_by_name(light_study, tmp_path, capsys):
    mixed = _copy(light_study, tmp_path, "mixed")
    shutil.copytree(mixed / "seed-1", mixed / "seed-2")
    _edit_json(mixed / "seed-2" / "config.json", lambda config: config.update(num_steps=4))
    assert main(["study", "--report-only", str(mixed)]) == 1
    _one_line(capsys, f"{mixed / 'seed-2'}: its num_steps is 4, the other seeds' 2", "move seed-2 out")
    assert main(["study", "--compare", str(mixed), str(light_study), "--out", str(tmp_path / "out")]) == 1
    _one_line(capsys, "seed-2: its num_steps is 4")

    _edit_json(mixed / "seed-2" / "config.json", lambda config: config.update(num_steps=2))
    _edit_json(mixed / "seed-0" / "config.json", lambda config: config.update(recipe="book-gru", cell="gru"))
    assert main(["study", "--report-only", str(mixed)]) == 1          # two seeds against one: seed 0 is the odd one
    _one_line(capsys, f"{mixed / 'seed-0'}: its recipe is 'book-gru', the other seeds' 'book'")


@pytest.mark.parametrize("file, change, field", [
    ("seed-1/summary.json", lambda s: s["comparison"]["learning_curves"].update(ours_per_step=[]),
     "field 'comparison.learning_curves.ours_per_step' is empty"),
    ("seed-1/summary.json", lambda s: s["comparison"].pop("story"), "no field 'comparison.story'"),
    ("seed-0/summary.json", lambda s: s["comparison"]["story"]["our_stories"][0]["measures"].update(distinct_2="x"),
     "field 'comparison.story.our_stories[0].measures.distinct_2' is 'x', not int or float or null"),
    ("report.json", lambda r: r["per_step"][0].pop("valid"), "no field 'per_step[0].valid'"),
    ("report.json", lambda r: r["story_measures"]["distinct_2"].update(seed_medians=None),
     "field 'story_measures.distinct_2.seed_medians' is None, not a list"),
])
def test_every_nested_field_of_a_summary_or_report_is_checked(light_study, tmp_path, capsys, file, change, field):
    damaged = _copy(light_study, tmp_path, "damaged")
    _edit_json(damaged / file, change)
    assert main(["study", "--compare", str(damaged), str(light_study), "--out", str(tmp_path / "out")]) == 1
    _one_line(capsys, f"{damaged / file}: {field}")


def test_seeds_and_jobs_are_bounded_before_anything_is_made(light_study, tmp_path, capsys):
    study_dir = tmp_path / "study"
    started = time.monotonic()
    assert main(["study", "--recipe", "book", "--seeds", "0-4294967295", "--study-dir", str(study_dir)]) == 2
    _one_line(capsys, "4,294,967,296 seeds; a study holds at most 10,000")
    assert time.monotonic() - started < 5 and not study_dir.exists()

    def study(jobs):
        return main(["study", "--recipe", "book", "--seeds", "0-1", "--num-steps", "2", *TINY, "--study-dir",
                     str(light), "--jobs", str(jobs)])
    light = _copy(light_study, tmp_path, "light")
    before = (light / "study.json").read_bytes()
    assert study(10_000_000_000) == 2
    _one_line(capsys, "--jobs 10000000000: at most")
    assert study(0) == 2
    _one_line(capsys, "--jobs 0: train at least one seed")
    assert study(3) == 2
    _one_line(capsys, "--jobs 3: at most 2")
    assert (light / "study.json").read_bytes() == before


@pytest.fixture
def tmpfs(tmp_path):
    """mount(options): a fresh tmpfs (root only, as the suite runs) at a new folder, unmounted after the test."""
    mounted = []

    def mount(options):
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point
    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_export_onto_a_small_disk_leaves_no_half_written_seed_folder(light_study, tmp_path, tmpfs, capsys):
    disk = tmpfs("size=48k")                       # room for one seed folder, not for two
    assert main(["study", "--report-only", str(light_study), "--export", str(disk / "export")]) == 1
    _one_line(capsys, f"--export {disk / 'export'}: cannot write", "no space left on device")
    assert (disk / "export" / "seed-0").is_dir()      # the first seed fitted; the second failed and left nothing
    for folder in (disk / "export").iterdir():
        assert folder.name == "seed-0" and sorted(p.name for p in folder.iterdir()) == \
            sorted(p.name for p in (light_study / "seed-0").iterdir())        # whole, and nothing else

    again = tmp_path / "again"                     # a former export is replaced whole; a killed one's leftover goes
    assert main(["study", "--report-only", str(light_study), "--export", str(again)]) == 0
    (again / "seed-0" / "stale.txt").write_text("from before\n")
    (again / ".seed-1.4999999.abc.tmp").mkdir()
    assert main(["study", "--report-only", str(light_study), "--export", str(again)]) == 0
    assert sorted(p.name for p in again.glob("seed-0/*")) == sorted(p.name for p in light_study.glob("seed-0/*"))
    assert not list(again.glob(".*"))

    inside = _copy(light_study, tmp_path, "inside")
    assert main(["study", "--report-only", str(inside), "--export", str(inside / "seed-6")]) == 2
    _one_line(capsys, f"--export {inside / 'seed-6'} is inside the study folder")
    assert not (inside / "seed-6").exists()


def test_disk_and_folder_errors_are_one_line_naming_the_path(light_study, tmp_path, tmpfs, capsys):
    read_only = tmpfs("size=1m,ro")
    other = _copy(light_study, tmp_path, "other")
    assert main(["study", "--compare", str(light_study), str(other), "--out", str(read_only / "out")]) == 1
    _one_line(capsys, f"--out {read_only / 'out'}: cannot write {read_only}: read-only file system")
    assert main(["study", "--report-only", str(light_study), "--export", str(read_only / "export")]) == 1
    _one_line(capsys, f"--export {read_only / 'export'}: cannot write {read_only}: read-only file system")

    full = tmpfs("size=8k")
    assert main(["study", "--compare", str(light_study), str(other), "--out", str(full / "out")]) == 1
    assert "no space left on device" in _one_line(capsys, str(full / "out")).lower()   # the PNG, written first
    assert not [p for p in full.rglob("*") if p.is_file()]

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    assert main(["study", "--report-only", str(read_only / "study")]) == 1
    _one_line(capsys, f"--report-only {read_only / 'study'}: cannot write {read_only}: read-only file system")
    for study_dir, meaning in ((a_file, f"cannot write {a_file}: not a directory"),
                               (read_only / "study", f"cannot write {read_only}: read-only file system")):
        assert main(["study", "--recipe", "book", "--seeds", "0", "--study-dir", str(study_dir)]) == 1
        _one_line(capsys, f"--study-dir {study_dir}: {meaning}")


def test_a_stopped_report_says_what_was_stopped_and_how_to_continue(light_study, monkeypatch, capsys):
    from reproduce import errors, study

    def stopped(study_dir):
        raise errors.Terminated()
    monkeypatch.setattr(study, "write_report", stopped)
    assert main(["study", "--report-only", str(light_study)]) == 143
    _one_line(capsys, "terminated; the report was not finished", f"`study --report-only {light_study}` writes it")


# ---------------------------------------------------------------- word recipes
def _valid_curve(study_dir, seed):
    summary = json.loads((study_dir / f"seed-{seed}" / "summary.json").read_text())
    return [row["valid_perplexity"] for row in summary["comparison"]["learning_curves"]["ours_per_step"]]


@pytest.fixture(scope="module")
def word_study(corpora_dir, tmp_path_factory):
    """A tiny study of book-words-deep, seeds 0-1, 2 steps on the documents of the book's printed run (which
    need all 100 stories), its stories folder holding 001-100 and two short held-out stories, 106 and 107: (its
    folder, the stories folder, the study's output)."""
    root = tmp_path_factory.mktemp("word-study")
    stories = root / "stories"
    stories.mkdir()
    for story in [*sorted((corpora_dir / "grimm").glob("[0-9][0-9][0-9].txt")),
                  *(corpora_dir / "grimm-unseen" / f"{n}.txt" for n in (106, 107))]:
        (stories / story.name).symlink_to(story)
    result = run_here("study", "--recipe", "book-words-deep", "--seeds", "0-1", "--jobs", "2", "--stories-dir", stories,
                      *tiny_options("book-words-deep"), "--cbow-steps-per-doc", "1", "--num-files", "100",
                      "--doc-order", "book", "--num-steps", "2", "--study-dir", root / "study")
    assert result.returncode == 0, result.stderr
    return root / "study", stories, result


def test_a_word_recipe_study_scores_its_seeds_and_places_the_printed_steps_it_has(word_study):
    study_dir, stories, result = word_study
    assert "seed 1: step 2/2" in result.stdout and "study 4/4 steps" in result.stdout
    seed_dir = study_dir / "seed-0"
    summary = json.loads((seed_dir / "summary.json").read_text())
    history = summary["comparison"]["learning_curves"]["ours_per_step"]
    metrics = (seed_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [row["valid_perplexity"] for row in history] == [float(line.split(",")[2]) for line in metrics]
    assert [row["learning_rate"] for row in history] == [0.0005, 0.0005] and "story" not in summary["comparison"]
    assert summary["options"]["layer_nodes"] == "16,12,8" and "graph" not in summary["options"]

    heldout = summary["comparison"]["heldout"]
    assert (heldout["scored"], heldout["stories"], heldout["last"]["checkpoint"]) == (2, "106-107", "ckpt/model-2")
    scored = evaluate(seed_dir, stories, numbers=[106, 107], log=lambda line: None)     # the best checkpoint
    assert heldout["best"]["perplexity"] == pytest.approx(scored["rows"][-1]["perplexity"], abs=1e-6)
    assert heldout["best"]["per_story"]["107"] == pytest.approx(scored["rows"][1]["perplexity"], abs=1e-4)
    assert heldout["best"]["step"] == scored["step"]

    report = json.loads((study_dir / "report.json").read_text())
    assert (report["book_run"], report["printed_steps"], report["compared_steps"]) == \
        ("book deep LSTM (RNN API)", 197, 2)
    book_best = min(row["valid_perplexity"] for row in printed_word_steps("deep")[:2])
    assert report["ranks"]["best valid perplexity"] == place(book_best, [min(_valid_curve(study_dir, seed))
                                                                         for seed in (0, 1)])
    assert report["verdict"] == report["ranks"]["best valid perplexity"]["verdict"]
    assert report["steps_outside"]["valid"]["of"] == 2 and report["heldout"]["bands"]["best"]["n"] == 2
    assert report["story_measures"] == {} and not (study_dir / "story_measures.png").exists()
    assert "the figures, ranks and verdict compare the 2 steps both have" in (study_dir / "report.md").read_text()
    assert (study_dir / "report.md").read_text().startswith("# Study of `book-words-deep` (3 LSTMCells [16, 12, 8])")
    assert (study_dir / "band.png").stat().st_size > 10_000


def test_a_word_recipe_study_is_exported_light_and_continued_from_its_export(word_study, tmp_path, capsys):
    study_dir = word_study[0]
    exported = tmp_path / "exported"
    assert main(["study", "--report-only", str(study_dir), "--export", str(exported)]) == 0
    assert sorted(p.name for p in (exported / "seed-0").iterdir()) == \
        ["book_comparison.csv", "config.json", "embeddings.json", "environment.json", "metrics.csv", "samples.txt",
         "summary.json"]
    assert _without_path(json.loads((exported / "report.json").read_text())) == \
        _without_path(json.loads((study_dir / "report.json").read_text()))
    command = ["study", "--recipe", "book-words-deep", "--seeds", "0-1", *tiny_options("book-words-deep"),
               "--cbow-steps-per-doc", "1", "--num-files", "100", "--doc-order", "book", "--num-steps", "2",
               "--study-dir", str(exported), "--print-commands"]
    capsys.readouterr()
    assert main(command) == 0 and capsys.readouterr().out == ""          # its seeds have finished
    assert main(command[:-1] + ["--seeds", "0-2", "--print-commands"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and " --seed 2 " in printed[0] and "--layer-nodes 16,12,8" in printed[0]


def test_a_word_recipe_study_takes_the_recipes_options_and_refuses_others_in_one_line(tmp_path, capsys):
    study_dir = str(tmp_path / "study")
    assert main(["study", "--recipe", "book-words-deep", "--graph", "faithful", "--study-dir", study_dir]) == 2
    _one_line(capsys, "--graph is not used by recipe book-words-deep; leave it out (it is an option of book, "
                      "book-notebook, book-peephole, book-gru)")
    assert main(["study", "--recipe", "book-words-deep", "--num-nodes", "8", "--study-dir", study_dir]) == 2
    _one_line(capsys, "--num-nodes is not used by recipe book-words-deep", "book-words)")
    assert main(["study", "--recipe", "book", "--embeddings", "cbow", "--study-dir", study_dir]) == 2
    _one_line(capsys, "--embeddings is not used by recipe book;", "book-words-deep, book-words)")
    assert main(["study", "--recipe", "book-words-deep", "--doc-order", "book", "--study-dir", study_dir]) == 2
    _one_line(capsys, "printed 197 steps", "--num-steps 251")              # the recipe's 251: more than printed
    assert main(["study", "--recipe", "book-words-deep", "--layer-nodes", "16,x", "--study-dir", study_dir]) == 2
    _one_line(capsys, "--layer-nodes '16,x': give the units of each layer")
    assert main(["study", "--recipe", "book-words", "--fed-learning-rate", "0", "--study-dir", study_dir]) == 2
    _one_line(capsys, "--fed-learning-rate is not used by recipe book-words")
    with pytest.raises(SystemExit) as exit_info:                          # typed as train types it
        main(["study", "--recipe", "book-words", "--embedding-size", "-3", "--study-dir", study_dir])
    assert exit_info.value.code == 2
    assert not (tmp_path / "study").exists()


def _light_study(study_dir, recipe, first_valid, **options):
    """Light seed folders of 3 steps of `recipe` written here, seed k's valid perplexity first_valid[k] / step."""
    for seed, valid in first_valid.items():
        folder = study_dir / f"seed-{seed}"
        folder.mkdir(parents=True)
        config = recipe_config(recipe, seed=seed, num_steps=3, **options)
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
        history = [{"step": step, "train_perplexity": valid, "valid_perplexity": valid / step, "learning_rate": 0.001,
                    "learning_rate_reduced": 0} for step in (1, 2, 3)]
        stories = {"story": {"our_stories": [], "book_stories": [],
                             "our_median": dict.fromkeys(text_metrics.MEASURES)}} if recipe == "book" else {}
        (folder / "summary.json").write_text(json.dumps({
            "recipe": recipe, "seed": seed, "steps": 3, "options": {},
            "comparison": {"steps": 3, "environment": "here", "learning_curves": {"ours_per_step": history},
                           "heldout": None, **stories}}))
    return study_dir


def test_the_word_lstms_single_printed_step_is_placed_among_the_seeds(tmp_path, capsys):
    """A study of book-words (light seed folders written here): the book printed one step of its run, so the
    figures and the verdict compare step 1."""
    first_valid = {0: 900.0, 1: 1000.0, 2: 1100.0}
    study_dir = _light_study(tmp_path / "study", "book-words", first_valid)
    assert main(["study", "--report-only", str(study_dir)]) == 0
    report = json.loads((study_dir / "report.json").read_text())
    book = printed_word_steps("lstm")[0]["valid_perplexity"]                  # 973.43
    assert (report["printed_steps"], report["compared_steps"]) == (1, 1)
    assert report["ranks"]["best valid perplexity"] == place(book, list(first_valid.values()))
    assert report["verdict"] == f"inside: the book's {book:.2f} ranks 2 of 4"
    assert report["figures_by_seed"]["0"]["best valid perplexity"] == 300.0      # a seed's own: its 3 steps
    assert "the book printed 1 step of its run, the study has 3" in capsys.readouterr().out
    assert (study_dir / "report.md").read_text().startswith("# Study of `book-words` (LSTM, 128 units, word vectors)")


def test_the_deep_studys_halvings_are_counted_as_the_printed_run_counted_them(tmp_path):
    """The printed deep run's plateau counter started where earlier runs of its cell left it (2 checks without a
    new best, a best below every valid perplexity of its first 50 steps): its first halving came after step 3.
    The seeds' halvings are counted from there, as the loop feeds a fixed rate; a run fed the schedule keeps
    its own."""
    study_dir = _light_study(tmp_path / "deep", "book-words-deep", {0: 2000.0, 1: 2200.0})
    assert main(["study", "--report-only", str(study_dir)]) == 0
    report = json.loads((study_dir / "report.json").read_text())
    assert report["ranks"]["first halving after step"]["seeds"] == [3, 3]
    assert report["ranks"]["learning-rate halvings"]["seeds"] == [1, 1]
    assert report["halvings_counted"].startswith("learning-rate halvings are counted as the printed run counted")
    assert "Learning-rate halvings are counted as the printed run" in (study_dir / "report.md").read_text()

    scheduled = _light_study(tmp_path / "scheduled", "book-words-deep", {0: 2000.0, 1: 2200.0},
                             fed_learning_rate=0.0)
    assert main(["study", "--report-only", str(scheduled)]) == 0
    report = json.loads((scheduled / "report.json").read_text())
    assert report["ranks"]["learning-rate halvings"]["seeds"] == [0, 0] and "halvings_counted" not in report


def test_word_studies_are_compared_beside_their_own_printed_runs_and_never_with_bigram_ones(tmp_path, capsys):
    words = _light_study(tmp_path / "words", "book-words", {0: 900.0, 1: 1000.0})
    deep = _light_study(tmp_path / "deep", "book-words-deep", {0: 2000.0, 1: 2200.0})
    bigrams = _light_study(tmp_path / "bigrams", "book", {0: 30.0, 1: 40.0})
    out = tmp_path / "out"
    assert main(["study", "--compare", str(words), str(deep), "--out", str(out)]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison["book"]) == ["book deep LSTM (RNN API)", "book word2vec LSTM"]
    assert comparison["book"]["book word2vec LSTM"]["best valid perplexity"] == \
        printed_word_steps("lstm")[0]["valid_perplexity"]
    table = (out / "comparison.md").read_text()
    assert "Perplexity per word; each study beside its own printed run" in table
    assert "| words | book-words (LSTM, 128 units, word vectors) | random | 2 |" in table
    assert "| deep | book-words-deep (3 LSTMCells [64, 48, 32]) | random | 2 |" in table
    capsys.readouterr()
    assert main(["study", "--compare", str(words), str(bigrams), "--out", str(tmp_path / "mixed")]) == 2
    _one_line(capsys, "words is a study of book-words (perplexity per word), bigrams of book (perplexity per "
                      "bigram)", "not comparable")
    assert not (tmp_path / "mixed").exists()


def test_a_word_study_fetches_the_books_embeddings_once_before_any_seed_starts(tmp_path, monkeypatch, capsys):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(SHARED / "golden" / "book_ch8_embeddings.npy", served / "embeddings.npy")
    monkeypatch.chdir(tmp_path)
    with StoryServer(served) as server:
        monkeypatch.setattr(word_runs, "BOOK_EMBEDDINGS_URL", server.url + "embeddings.npy")
        server.script("embeddings.npy", 404)
        assert main(["study", "--recipe", "book-words", "--seeds", "0-1", "--study-dir", "study"]) == 2
        _one_line(capsys, "fetching the book's embeddings.npy into embeddings.npy failed")
        assert not (tmp_path / "study").exists() and not (tmp_path / "embeddings.npy").exists()
        server.script("embeddings.npy", OK)
        for recipe in ("book-words", "book-words-deep"):               # fetched once, read by every seed
            fetch_shared_files(recipe, {})
        assert (tmp_path / "embeddings.npy").read_bytes() == (served / "embeddings.npy").read_bytes()
        assert server.requests["embeddings.npy"] == 2
