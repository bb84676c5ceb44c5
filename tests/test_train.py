"""The loop end to end: train, generate (in a fresh process too), repeat with a seed, resume, the plateau rule."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO, TINY, run_cli, run_here
from reproduce import main
from reproduce.config import Config
from reproduce.data import load_corpus
from reproduce.recipes import recipe_config
from reproduce.rundir import RunDir
from reproduce.sample import generate
from reproduce.train import Plateau, split_documents


def test_plateau_rule_halves_the_rate_where_the_book_did(golden_dir):
    rows = [r for r in csv.DictReader(open(golden_dir / "book_ch8_perplexity.csv")) if r["model"] == "lstm"]
    plateau = Plateau(threshold=5)
    reduced_after = [int(r["step"]) for r in rows if plateau.update(float(r["valid_perplexity"]))]
    assert reduced_after == [9, 15, 24]
    assert reduced_after == [int(r["step"]) for r in rows if r["learning_rate_reduced_after"] == "1"]


def _metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _samples(run_dir):
    return (run_dir / "samples.txt").read_text()


def _train(grimm_dir, run_dir, *extra):
    """`train` of the tiny configuration in this process (the shared tiny_book_run trained in a fresh one)."""
    result = run_here("train", "--stories-dir", grimm_dir, *TINY, "--run-dir", run_dir, *extra)
    assert result.returncode == 0, result.stderr
    return result


def test_train_writes_checkpoints_metrics_and_samples(tiny_book_run):
    run_dir, result = tiny_book_run
    rows = _metrics(run_dir)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["train_perplexity"]) < float(rows[0]["train_perplexity"])
    assert "step 4/4" in result.stdout and "valid perplexity" in result.stdout and "ETA" in result.stdout
    assert _samples(run_dir).count("=== step") == 4
    assert (run_dir / "best" / "best.json").exists() and list((run_dir / "ckpt").glob("model-4.index"))
    assert len(list((run_dir / "ckpt").glob("state-*.json"))) == 3        # keep_last
    assert list((run_dir / "events").glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "config.json").read_text())["recipe"] == "book"


def test_generate_in_a_fresh_process_is_repeatable(tiny_book_run, tmp_path):
    run_dir, _ = tiny_book_run
    first = run_cli("generate", "--checkpoint", run_dir, "--length", "30", "--seed", "4",
                    "--output", tmp_path / "story.txt")
    second = run_here("generate", "--checkpoint", run_dir, "--length", "30", "--seed", "4")    # another process
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    story = first.stdout.strip("\n")
    assert len(story) >= 31 * 2 - 2                        # the start bigram and 30 more (UNK is 3 letters)
    assert (tmp_path / "story.txt").read_text().strip("\n") == story
    other_seed = run_here("generate", "--checkpoint", run_dir, "--length", "30", "--seed", "5")
    assert other_seed.stdout != first.stdout


def test_a_checkpoint_of_one_graph_generates_the_same_story_in_the_other(tiny_book_run):
    run_dir, _ = tiny_book_run
    stories = {graph: generate(run_dir, length=40, seed=9, prime="the king", graph=graph)
               for graph in ("fast", "faithful")}
    assert stories["fast"] == stories["faithful"]
    assert stories["fast"].startswith("the king")


def test_same_seed_same_run(grimm_dir, tiny_book_run, tmp_path):
    run_dir, _ = tiny_book_run
    again = tmp_path / "again"                              # in this process, the same as in a fresh one
    _train(grimm_dir, again, "--num-steps", "4", "--seed", "3")
    assert _metrics(again) == _metrics(run_dir)
    assert _samples(again) == _samples(run_dir)
    different = tmp_path / "different"
    _train(grimm_dir, different, "--num-steps", "2", "--seed", "12")
    assert _metrics(different) != _metrics(run_dir)[:2]


def test_resume_ends_as_the_uninterrupted_run(grimm_dir, tiny_book_run, tmp_path):
    run_dir, _ = tiny_book_run
    resumed = tmp_path / "resumed"
    _train(grimm_dir, resumed, "--num-steps", "2", "--seed", "3")
    result = _train(grimm_dir, resumed, "--num-steps", "4", "--resume")
    assert "Resumed" in result.stdout
    assert _metrics(resumed) == _metrics(run_dir)
    assert _samples(resumed) == _samples(run_dir)


def test_resume_of_the_notebook_recipe_carries_the_train_state(grimm_dir, tmp_path):
    # book-notebook never resets the train state, so the checkpoint must carry it across the stop.
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    _train(grimm_dir, whole, "--recipe", "book-notebook", "--num-steps", "3", "--seed", "2")
    _train(grimm_dir, halves, "--recipe", "book-notebook", "--num-steps", "1", "--seed", "2")
    _train(grimm_dir, halves, "--recipe", "book-notebook", "--num-steps", "3", "--resume")
    assert _metrics(halves) == _metrics(whole)


def test_the_books_configuration_is_accepted_on_the_real_corpus(grimm_dir):
    """The book's sizes on its 100 stories: documents 0-9 lend their tails to validation. 004.txt has only
    44 bigrams per batch row for 50 unrollings; its rows wrap around, as the book's generator did."""
    corpus = load_corpus(grimm_dir, 100)
    train_gens, valid_gens = split_documents(corpus, recipe_config("book"))
    assert len(train_gens) == 100 and len(valid_gens) == 10
    assert [len(g.text) for g in valid_gens] == [100] * 10
    assert [len(g.text) for g in train_gens[:10]] == [len(d) - 100 for d in corpus.data_list[:10]]
    assert len(train_gens[10].text) == len(corpus.data_list[10])


def test_the_main_job_continues_the_newest_unfinished_run(tmp_path, grimm_dir):
    runs = tmp_path / "checkpoints"
    _train(grimm_dir, runs / "book-20260101-000000", "--num-steps", "1")
    finished = runs / "book-20260101-000000"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert RunDir.newest_unfinished("book") is None                   # its only run is complete
        config = json.loads((finished / "config.json").read_text())
        config["num_steps"] = 3                                           # as if stopped after step 1 of 3
        (finished / "config.json").write_text(json.dumps(config))
        assert RunDir.newest_unfinished("book") == Path("checkpoints/book-20260101-000000")
    finally:
        os.chdir(cwd)


def test_the_main_job_trains_and_generates_through_the_book_recipe(tmp_path, monkeypatch):
    """`all` asks the recipe table for `book`: its train with the main job's options (the stories downloaded
    where $GRIMM_STORIES_DIR says), its generate with the recipe's default sampler, then the comparison."""
    calls = []

    class RecordingBook:
        name, samplers, config_class = "book", ("top3", "greedy"), Config

        def train(self, args):
            calls.append(args)
            (tmp_path / "run").mkdir()
            return tmp_path / "run"

        def generate(self, options, run):
            calls.append((options, run.path))
            return "a story"

    monkeypatch.setattr(main, "RECIPES", {"book": RecordingBook()})
    monkeypatch.setattr(main.compare, "compare_runs", calls.append)
    monkeypatch.setenv("GRIMM_STORIES_DIR", "my-stories")
    monkeypatch.chdir(tmp_path)
    assert main.main(["all", "--graph", "faithful"]) == 0
    train_args, (options, run_path), compared = calls
    assert (train_args.recipe, train_args.run_dir, train_args.resume, train_args.download, train_args.stories_dir,
            train_args.graph, train_args.num_steps) == ("book", None, False, True, "my-stories", "faithful", None)
    assert (options.checkpoint, options.sampler, options.seed, options.length) == (str(run_path), "top3", None, None)
    assert (run_path / "story.txt").read_text() == "a story\n" and compared == [run_path]


def test_resume_refuses_a_contradicting_option_and_takes_its_stories_from_a_new_place(tiny_book_run, grimm_dir,
                                                                                      tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_book_run[0], run_dir)
    before = (run_dir / "metrics.csv").read_text()
    for options, fragment in ((["--num-nodes", "32"], "--num-nodes 32 contradicts"),
                              (["--recipe", "book-gru"], "holds a run of recipe book, not book-gru"),
                              (["--dropout", "0.5"], "--dropout 0.5 contradicts")):
        refused = run_here("train", "--resume", "--run-dir", run_dir, *options)
        assert refused.returncode == 2 and refused.stderr.startswith("error: ") and fragment in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    moved = tmp_path / "moved"
    moved.mkdir()
    for story in sorted(grimm_dir.glob("*.txt"))[:12]:
        (moved / story.name).write_text(story.read_text())
    same = run_here("train", "--resume", "--run-dir", run_dir, "--stories-dir", moved, *TINY)    # equal options
    assert same.returncode == 0 and "has already trained 4 of 4 steps" in same.stdout, same.stderr
    (moved / "003.txt").write_text((moved / "003.txt").read_text() + " and they lived happily ever after.")
    other = run_here("train", "--resume", "--run-dir", run_dir, "--stories-dir", moved)
    assert other.returncode == 2 and "does not hold the stories" in other.stderr, other.stderr
    assert (run_dir / "metrics.csv").read_text() == before


def test_sigterm_stops_training_with_the_command_that_continues_it(grimm_dir, tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), "train", "--stories-dir",
                                str(grimm_dir), *TINY, "--num-steps", "50", "--run-dir", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in process.stdout:
        if line.startswith("step 1/50"):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: terminated; the last checkpoint of"), err
    assert f"continue with `python reproduce/main.py train --recipe book --resume --run-dir {run_dir}`" in lines[0]
