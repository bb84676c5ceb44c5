"""Held-out perplexity on the site's stories 101-209: the main job downloads and scores them (a mirror lacking
one is said in one line), a study scores every seed and reports the held-out band, and `study --compare`
compares recipes on them."""
import json
import shutil

import pytest

from conftest import TINY, run_here
from http_server import StoryServer, refused_url
from reproduce.evaluate import evaluate
from reproduce.heldout import HELDOUT_NUMBERS


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
