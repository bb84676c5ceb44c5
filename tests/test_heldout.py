"""Held-out perplexity on the site's stories 101-209: the main job downloads and scores them (a mirror lacking
one is said in one line), a study scores every seed and reports the held-out band, and `study --compare`
compares recipes on them."""
import contextlib
import io
import json
import math
import shutil

import pytest

from conftest import TINY, run_here
from http_server import StoryServer, refused_url
from reproduce.evaluate import evaluate
from reproduce.heldout import HELDOUT_NUMBERS
from reproduce.main import main
from reproduce.study_report import spearman


@pytest.fixture(scope="session")
def site_dir(corpora_dir, tmp_path_factory):
    """The site's 209 stories in one folder (links to the shared corpora), as the book's site serves them."""
    site = tmp_path_factory.mktemp("site")
    for folder in ("grimm", "grimm-unseen"):
        for story in sorted((corpora_dir / folder).glob("[0-9][0-9][0-9].txt")):
            (site / story.name).symlink_to(story)
    return site


def test_the_main_job_scores_the_held_out_stories_a_mirror_has(tiny_book_run, site_dir, tmp_path):
    """`all` on a finished tiny run (it trains nothing more): stories 101-209 downloaded from a mirror lacking
    150.txt, which one line names; the best checkpoint scored on the other 108 as `evaluate` scores them."""
    run_dir, stories = tmp_path / "run", tmp_path / "stories"
    shutil.copytree(tiny_book_run[0], run_dir)
    trained = {name: (run_dir / name).read_bytes() for name in ("metrics.csv", "samples.txt")}
    with StoryServer(site_dir) as server:
        server.script("150.txt", 404)
        result = run_here("all", "--run-dir", run_dir,
                          env={"GRIMM_BASE_URL": server.url, "GRIMM_STORIES_DIR": str(stories)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line for line in lines if "lacks" in line] == [f"{server.url} lacks 1 of the 109 stories (HTTP 404): 150"]
    assert lines[-1].startswith("Held-out perplexity ") and "on 108 stories (101-149,151-209)" in lines[-1], lines[-1]
    assert {name: (run_dir / name).read_bytes() for name in trained} == trained

    report = json.loads((run_dir / "report.json").read_text())
    heldout = report["heldout"]
    assert (heldout["scored"], heldout["missing"], len(heldout["best"]["per_story"])) == (108, [150], 108)
    assert "Held-out stories 101-209" in (run_dir / "report.md").read_text()
    present = [n for n in HELDOUT_NUMBERS if n != 150]
    scored = evaluate(run_dir, stories, numbers=present, log=lambda line: None)
    assert heldout["best"]["perplexity"] == pytest.approx(scored["rows"][-1]["perplexity"], abs=1e-6)
    assert heldout["best"]["step"] == scored["step"]


def test_the_main_job_ends_with_its_held_out_line_after_the_checkpoints_it_used(tiny_book_run, site_dir, tmp_path,
                                                                               monkeypatch):
    """stdout and stderr as one terminal shows them: the `using best/...` notes come before the closing lines."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_book_run[0], run_dir)
    monkeypatch.setenv("GRIMM_STORIES_DIR", str(site_dir))          # every story present: nothing downloaded
    monkeypatch.chdir(tmp_path)
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal), contextlib.redirect_stderr(terminal):
        assert main(["all", "--run-dir", str(run_dir)]) == 0
    lines = terminal.getvalue().strip().splitlines()
    assert any(line.startswith("using best/") for line in lines)
    assert lines[-1].startswith("Held-out perplexity of the best checkpoint ") and "on 109 stories" in lines[-1], lines[-1]


def test_the_held_out_part_never_fails_the_main_job(tiny_book_run, grimm_dir, tmp_path):
    """A mirror that refuses connections: the download's failure is one line, the run is still reported."""
    run_dir, stories = tmp_path / "run", tmp_path / "stories"
    shutil.copytree(tiny_book_run[0], run_dir)
    stories.mkdir()
    for story in sorted(grimm_dir.glob("*.txt")):
        (stories / story.name).symlink_to(story)
    result = run_here("all", "--run-dir", run_dir, env={"GRIMM_BASE_URL": refused_url(), "GRIMM_STORIES_DIR": str(stories)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith("held-out stories: the download stopped: ")]) == 1
    assert lines[-1].startswith("Held-out perplexity (stories 101-209): not measured"), lines[-1]
    assert json.loads((run_dir / "report.json").read_text())["heldout"] is None


# ---------------------------------------------------------------- studies
LEFT_OUT = ("150.txt", "209.txt")                 # not in the study's stories folder
PRESENT = [n for n in HELDOUT_NUMBERS if f"{n}.txt" not in LEFT_OUT]


@pytest.fixture(scope="module")
def heldout_study(corpora_dir, tmp_path_factory):
    """A tiny study of seeds 0-1 (2 steps) whose stories folder holds 001-100 and 101-209 but 150 and 209:
    (its folder, the stories folder, the study's output)."""
    root = tmp_path_factory.mktemp("heldout-study")
    stories = root / "stories"
    stories.mkdir()
    for folder in ("grimm", "grimm-unseen"):
        for story in sorted((corpora_dir / folder).glob("[0-9][0-9][0-9].txt")):
            if story.name not in LEFT_OUT:
                (stories / story.name).symlink_to(story)
    result = run_here("study", "--recipe", "book", "--seeds", "0-1", "--jobs", "2", "--stories-dir", stories, *TINY,
                      "--num-steps", "2", "--study-dir", root / "study")
    assert result.returncode == 0, result.stderr
    return root / "study", stories, result


def test_every_seed_is_scored_on_the_held_out_stories_as_evaluate_scores_it(heldout_study):
    study_dir, stories, result = heldout_study
    for seed in (0, 1):
        said = [line for line in result.stdout.splitlines() if line.startswith(f"seed-{seed}: held-out stories:")]
        assert said == [f"seed-{seed}: held-out stories: 2 of the 109 are not in {stories}/ (150,209); scoring the "
                        "107 present"], result.stdout
    seed_dir = study_dir / "seed-0"
    heldout = json.loads((seed_dir / "summary.json").read_text())["comparison"]["heldout"]
    assert (heldout["scored"], heldout["missing"], len(heldout["best"]["per_story"])) == (107, [150, 209], 107)
    for kind, checkpoint in (("best", seed_dir), ("last", seed_dir / "ckpt" / "model-2")):
        scored = evaluate(checkpoint, stories, numbers=PRESENT, log=lambda line: None)
        assert heldout[kind]["perplexity"] == pytest.approx(scored["rows"][-1]["perplexity"], abs=1e-6)
        assert heldout[kind]["step"] == scored["step"]
        assert heldout[kind]["per_story"]["101"] == pytest.approx(scored["rows"][0]["perplexity"], abs=1e-4)

    report = json.loads((study_dir / "report.json").read_text())
    section = report["heldout"]
    assert (section["seeds"], section["seeds_without"], section["missing_stories"]) == ([0, 1], [], [150, 209])
    assert section["bands"]["best"]["n"] == 2 and section["spearman"] is None     # two seeds: too few to rank
    assert report["figures_by_seed"]["0"]["held-out perplexity (best checkpoint)"] == heldout["best"]["perplexity"]
    assert "## Held-out stories 101-209" in (study_dir / "report.md").read_text()
    assert (study_dir / "heldout.png").stat().st_size > 10_000
    assert (study_dir / "heldout.csv").read_text().splitlines()[0] == ("seed,best_step,best_valid_perplexity,"
                                                                        "best_perplexity,last_step,"
                                                                        "last_valid_perplexity,last_perplexity,stories")
    assert "Held-out stories 101-209: best checkpoints " in result.stdout


def test_spearman_ranks_ties_by_their_mean():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)              # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1)
    assert spearman([1, 2, 3, 4], [1, 2, 2, 3]) == pytest.approx(4.5 / math.sqrt(5 * 4.5))     # ranks 1, 2.5, 2.5, 4
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 2, 3], [5, 5, 5]) is None


def _light_copy(heldout_study, tmp_path, name):
    """The study exported (light seed folders), once, then copied to tmp_path/name."""
    exported = heldout_study[0].parent / "exported"
    if not exported.exists():
        assert main(["study", "--report-only", str(heldout_study[0]), "--export", str(exported)]) == 0
    shutil.copytree(exported, tmp_path / name)
    return tmp_path / name


def _edit_summaries(study_dir, change):
    for path in sorted(study_dir.glob("seed-*/summary.json")):
        summary = json.loads(path.read_text())
        change(summary)
        path.write_text(json.dumps(summary))
    (study_dir / "report.json").unlink()


def test_summaries_without_held_out_figures_are_said_to_lack_them(heldout_study, tmp_path, capsys):
    old = _light_copy(heldout_study, tmp_path, "old")
    assert json.loads((old / "seed-1" / "summary.json").read_text())["comparison"]["heldout"]["scored"] == 107
    path = old / "seed-1" / "summary.json"
    summary = json.loads(path.read_text())
    del summary["comparison"]["heldout"]                 # as a study made before held-out scoring wrote it
    path.write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(["study", "--report-only", str(old)]) == 0
    assert "no held-out figures for seed 1 (a summary of an older study" in capsys.readouterr().out
    report = json.loads((old / "report.json").read_text())
    assert (report["heldout"]["seeds"], report["heldout"]["seeds_without"]) == ([0], [1])
    assert report["figures_by_seed"]["1"]["held-out perplexity (best checkpoint)"] is None

    del report["heldout"]                                # a report written before the held-out section
    (old / "report.json").write_text(json.dumps(report))
    assert main(["study", "--compare", str(old), str(_light_copy(heldout_study, tmp_path, "new")),
                 "--out", str(tmp_path / "out")]) == 0
    assert "(no held-out figures): writing it again" in capsys.readouterr().out
    assert "heldout" in json.loads((old / "report.json").read_text())


def test_studies_are_compared_on_held_out_perplexity_and_story_by_story(heldout_study, tmp_path, capsys):
    low, high = _light_copy(heldout_study, tmp_path, "low"), _light_copy(heldout_study, tmp_path, "high")

    def ten_times_higher_but_story_101(summary):
        for kind in ("best", "last"):
            entry = summary["comparison"]["heldout"][kind]
            entry["perplexity"] *= 10
            entry["per_story"] = {story: p * (0.01 if story == "101" else 10) for story, p in entry["per_story"].items()}
    _edit_summaries(high, ten_times_higher_but_story_101)
    none = _light_copy(heldout_study, tmp_path, "none")
    _edit_summaries(none, lambda summary: summary["comparison"].pop("heldout"))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["study", "--compare", str(low), str(high), str(none), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out perplexity (best checkpoint): apart: every low seed is below every high seed; low lower for 2 " \
           "of the 2 seeds both have" in printed
    assert ("low vs high, held-out perplexity per story (median over seeds): low lower on 106, high lower on 1 of "
            "the 107 stories both have") in printed
    assert "low vs none, held-out perplexity (best checkpoint): no figures of none" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    first = comparison["pairs"][0]
    assert (first["stories"]["stories"], first["stories"]["lower_first"], first["heldout"]["apart"]) == (107, 106, True)
    low_band = comparison["studies"][0]["bands"]["held-out perplexity (best checkpoint)"]
    high_band = comparison["studies"][1]["bands"]["held-out perplexity (best checkpoint)"]
    assert high_band["median"] == pytest.approx(10 * low_band["median"])
    assert (out / "heldout_stories.png").stat().st_size > 10_000
    rows = (out / "heldout_stories.csv").read_text().splitlines()
    assert rows[0] == "story,low,high,none" and len(rows) == 1 + 107 and rows[1].startswith("101,")
    markdown = (out / "comparison.md").read_text()
    assert "No held-out figures (older summaries, or no story of 101-209 in the stories folder): none (seeds 0, 1)" \
        in markdown


def test_a_summary_without_held_out_figures_is_computed_again_from_its_checkpoints(heldout_study, tmp_path,
                                                                                     capsys):
    study_dir = tmp_path / "study"
    shutil.copytree(heldout_study[0], study_dir)
    path = study_dir / "seed-0" / "summary.json"
    summary = json.loads(path.read_text())
    scored = summary["comparison"].pop("heldout")            # as a study made before held-out scoring wrote it
    path.write_text(json.dumps(summary))
    (study_dir / "seed-0" / "heldout.json").unlink()
    assert main(["study", "--report-only", str(study_dir)]) == 0
    assert "seed-0: held-out: best checkpoint best/model-2 (step 2): perplexity" in capsys.readouterr().out
    assert json.loads(path.read_text())["comparison"]["heldout"]["best"] == scored["best"] | {
        "seconds": json.loads(path.read_text())["comparison"]["heldout"]["best"]["seconds"]}
