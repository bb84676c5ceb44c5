"""`evaluate`: the numpy steps against the graph for every cell, the command on a tiny trained run, its errors."""
import argparse
import csv
import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from reproduce.argtypes import story_numbers
from reproduce.recipes import read_book_run
from reproduce.rundir import RunDir
from reproduce.recipes import recipe_config
from reproduce.data import load_corpus, read_story, to_bigrams, to_ids
from reproduce.evaluate import ranges_text, score_stories
from reproduce.main import main
from reproduce.model import BookModel
from reproduce.numpy_steps import NumpyModel
from reproduce.sample import generate_ids, generate_ids_numpy, sample_top3
from reproduce.train import perplexity_of

tf1 = tf.compat.v1
RECIPE_OF_CELL = {"lstm": "book", "peephole": "book-peephole", "gru": "book-gru"}


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_corpus(grimm_dir, 12)


@pytest.fixture(scope="module", params=list(RECIPE_OF_CELL))
def random_model(request, corpus):
    """A fast-graph BookModel of one cell with weights large enough that every term of its step matters."""
    config = recipe_config(RECIPE_OF_CELL[request.param], num_nodes=16, batch_size=8, num_unrollings=5)
    model = BookModel(config, corpus.vocabulary_size)
    session = tf1.Session(graph=model.graph)
    session.run(model.init)
    rng = np.random.RandomState(3)
    with model.graph.as_default():
        for variable in tf1.trainable_variables():
            variable.assign(rng.normal(0, 0.4, variable.shape.as_list()).astype(np.float32)).op.run(session=session)
    yield session, model
    session.close()


def test_numpy_perplexity_equals_the_valid_subgraph(random_model, corpus):
    session, model = random_model
    stories = [corpus.data_list[3][:160], corpus.data_list[5][40:110], corpus.data_list[8][:31]]   # unequal lengths
    rows = score_stories(NumpyModel.from_session(session, model.cell, model.w, model.b), stories, ["a", "b", "c"])
    graph = [perplexity_of(session, model, ids) for ids in stories]
    assert [row["perplexity"] for row in rows[:-1]] == pytest.approx(graph, rel=1e-5)
    pooled = math.exp(sum(math.log(p) * (len(ids) - 1) for p, ids in zip(graph, stories))
                      / sum(len(ids) - 1 for ids in stories))
    assert rows[-1]["perplexity"] == pytest.approx(pooled, rel=1e-5)
    assert rows[-1]["predicted"] == 159 + 69 + 30
    assert len({round(p, 2) for p in graph}) == 3             # the stories are told apart


def test_numpy_generation_writes_the_graph_loops_story(random_model, corpus):
    session, model = random_model
    session.run(model.reset_test_state, {model.reset_seed: [5, 0]})
    start = session.run(model.test_state)
    fast = generate_ids_numpy(session, model, 7, 80, sample_top3, np.random.RandomState(5))
    for before, after in zip(start, session.run(model.test_state)):     # the numpy steps leave the session alone
        np.testing.assert_array_equal(after, before)
    loop = generate_ids(session, model, 7, 80, sample_top3, np.random.RandomState(5))
    assert fast == loop
    assert len(set(fast)) > 5


def test_story_numbers_and_their_text():
    assert story_numbers("7,12,30-33") == [7, 12, 30, 31, 32, 33]
    assert story_numbers("101-209") == list(range(101, 210))
    assert ranges_text(story_numbers("33,7,12,30-32,8")) == "7-8,12,30-33"
    for bad in ("20-10", "0", "x", "3-", "1000"):
        with pytest.raises(argparse.ArgumentTypeError):
            story_numbers(bad)


@pytest.fixture(scope="module")
def tiny_run(tiny_book_run, tmp_path_factory):
    """A copy of the shared book run of 4 tiny steps, which evaluate writes its files into."""
    run_dir = tmp_path_factory.mktemp("evaluate") / "tiny"
    shutil.copytree(tiny_book_run[0], run_dir)
    return run_dir


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_evaluate_command_writes_csv_figure_and_one_line(tiny_run, grimm_dir, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--stories-dir", str(grimm_dir), "--files", "13-20,40"]) == 0
    stdout = capsys.readouterr().out
    assert len(stdout.strip().splitlines()) == 1
    rows = _rows(tiny_run / "evaluate-13-20_40.csv")
    assert [row["story"] for row in rows] == [f"{n:03d}.txt" for n in [*range(13, 21), 40]] + ["all"]
    stories, pooled = rows[:-1], rows[-1]
    assert int(pooled["bigrams"]) == sum(int(r["bigrams"]) for r in stories)
    assert int(pooled["predicted"]) == sum(int(r["bigrams"]) - 1 for r in stories)
    pooled_again = math.exp(sum(math.log(float(r["perplexity"])) * int(r["predicted"]) for r in stories)
                            / int(pooled["predicted"]))
    assert float(pooled["perplexity"]) == pytest.approx(pooled_again, rel=1e-4)
    assert 0 < float(pooled["unk_share"]) < 0.2
    assert (tiny_run / "evaluate-13-20_40.png").stat().st_size > 5000
    best = json.loads((tiny_run / "best" / "best.json").read_text())
    assert f"valid {best['valid_perplexity']:.2f}" in stdout
    assert f"perplexity {float(pooled['perplexity']):.2f}" in stdout

    # The trained checkpoint through the graph's valid subgraph, bigram by bigram: the same perplexity.
    config, vocab = read_book_run(RunDir.open(tiny_run))
    story = to_ids(to_bigrams(read_story(grimm_dir / "040.txt")), {b: i for i, b in enumerate(vocab["bigrams"])})
    model = BookModel(config, len(vocab["bigrams"]))
    with tf1.Session(graph=model.graph) as session:
        model.saver.restore(session, str(tiny_run / "best" / best["checkpoint"]))
        graph_perplexity = perplexity_of(session, model, story)
    assert float(stories[-1]["perplexity"]) == pytest.approx(graph_perplexity, rel=1e-5)


def test_default_is_every_story_file_of_the_folder(tiny_run, grimm_dir, tmp_path, capsys):
    for name in ("013.txt", "014.txt", "020.txt"):
        shutil.copy(grimm_dir / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a story")
    assert main(["evaluate", "--checkpoint", str(tiny_run / "ckpt" / "model-2"), "--stories-dir", str(tmp_path)]) == 0
    assert [row["story"] for row in _rows(tiny_run / "evaluate-13-14_20.csv")] == ["013.txt", "014.txt", "020.txt",
                                                                                  "all"]
    assert "(step 2," in capsys.readouterr().out


def _error(capsys, *argv):
    code = main(["evaluate", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return code, err


def test_one_line_errors(tiny_run, grimm_dir, tmp_path, capsys):
    code, err = _error(capsys, "--checkpoint", tiny_run, "--stories-dir", grimm_dir, "--files", "98-105")
    assert code == 1 and "5 of the 8 stories asked for are missing (first: 101.txt)" in err
    assert "download --stories-dir" in err and "--files 98-105" in err
    code, err = _error(capsys, "--checkpoint", tiny_run, "--stories-dir", tmp_path / "nowhere")
    assert code == 1 and "no such folder" in err
    code, err = _error(capsys, "--checkpoint", tmp_path / "no-run", "--stories-dir", grimm_dir)
    assert code == 1 and "not a run folder" in err
    classic = tmp_path / "shakespeare-char-1"
    classic.mkdir()
    (classic / "config.json").write_text(json.dumps({"recipe": "shakespeare-char"}))
    code, err = _error(capsys, "--checkpoint", classic, "--stories-dir", grimm_dir)
    assert code == 2 and "a run of shakespeare-char, not of a book recipe" in err and "metrics.csv" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--checkpoint", str(tiny_run), "--stories-dir", str(grimm_dir), "--files", "20-10"])
    assert exit_info.value.code == 2 and "20-10" in capsys.readouterr().err


# ---------------------------------------------------------------- one rule for story files, disk errors
def test_a_fifo_named_like_a_story_is_named_as_a_fifo_with_or_without_files(tiny_run, grimm_dir, tmp_path, capsys):
    shutil.copy(grimm_dir / "013.txt", tmp_path / "013.txt")
    os.mkfifo(tmp_path / "014.txt")
    for extra in ([], ["--files", "13-14"]):
        code, err = _error(capsys, "--checkpoint", tiny_run, "--stories-dir", tmp_path, *extra)
        assert code == 1 and "014.txt: a FIFO (named pipe), not a regular file" in err, err
        assert "missing" not in err and "download" not in err


def test_story_numbers_outside_the_site_are_left_out_with_a_warning_and_refused_with_files(tiny_run, grimm_dir,
                                                                                             tmp_path, capsys):
    for name in ("000.txt", "999.txt"):
        shutil.copy(grimm_dir / "013.txt", tmp_path / name)
    shutil.copy(grimm_dir / "014.txt", tmp_path / "014.txt")
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--stories-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: left out 000.txt, 999.txt: not a story number of the site (1 ... 209)" in err
    assert [row["story"] for row in _rows(tiny_run / "evaluate-14.csv")] == ["014.txt", "all"]
    for number in ("0", "999"):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", "--checkpoint", str(tiny_run), "--stories-dir", str(tmp_path), "--files", number])
        assert exit_info.value.code == 2 and "1 ... 209" in capsys.readouterr().err


def test_a_name_too_long_for_the_file_system_is_one_line_before_any_work(tiny_run, grimm_dir, capsys):
    code, err = _error(capsys, "--checkpoint", tiny_run, "--stories-dir", grimm_dir, "--files", "13", "--name", "n" * 260)
    assert code == 1 and "cannot write it (file name too long)" in err and "shorter name" in err
    assert not list(tiny_run.glob("evaluate-nnn*")) and not list(tiny_run.glob(".*.tmp"))


def test_many_scattered_stories_get_a_default_name_that_fits(tiny_run, grimm_dir, capsys):
    odd = ",".join(str(n) for n in range(13, 100, 2))
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--stories-dir", str(grimm_dir), "--files", odd]) == 0
    written = [p.name for p in tiny_run.glob("evaluate-13-99_44-stories_*.csv")]
    assert len(written) == 1 and len(written[0]) < 60


def test_a_read_only_run_folder_is_one_line_naming_it(tiny_run, grimm_dir, tmp_path, capsys):
    disk = tmp_path / "ro"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copytree(tiny_run, disk / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        code, err = _error(capsys, "--checkpoint", disk / "run", "--stories-dir", grimm_dir, "--files", "13")
        assert code == 1 and f"{disk / 'run' / 'evaluate-13.csv'}: cannot write it (read-only file system)" in err
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
