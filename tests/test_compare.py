"""`compare`: the data check against the book's fingerprint, the book's record, and reports of tiny real runs."""
import copy
import csv
import json
import shutil

import matplotlib
import pytest

from conftest import TINY, run_here
from reproduce import book_record, compare, text_metrics
from reproduce.data import fingerprint, load_corpus
from reproduce.errors import UserError

matplotlib.use("Agg")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    """A real PNG: the signature, and matplotlib reads it back as an image with pixels."""
    import matplotlib.image
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def train_tiny(run_dir, grimm_dir, *extra):
    result = run_here("train", "--stories-dir", grimm_dir, *TINY, "--num-steps", "2", "--run-dir", run_dir,
                      "--seed", "1", *extra)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, tiny_book_run):
    """A copy of the shared 4-step book run, which compare writes its report into."""
    run_dir = tmp_path_factory.mktemp("lstm") / "run"
    shutil.copytree(tiny_book_run[0], run_dir)
    return run_dir


# ---------------------------------------------------------------- the data check
@pytest.fixture(scope="module")
def book_fingerprint(golden_dir):
    return json.loads((golden_dir / "book_ch8_corpus_fingerprint.json").read_text())


@pytest.fixture(scope="module")
def real_corpus(grimm_dir):
    return load_corpus(grimm_dir, 100)


def test_the_real_corpus_is_identical_up_to_the_order_of_equal_counts(real_corpus, book_fingerprint):
    result = compare.check_data(fingerprint(real_corpus), book_fingerprint, real_corpus.counter,
                                real_corpus.reverse_dictionary)
    statuses = {key: field["status"] for key, field in result["fields"].items()}
    assert statuses == {"total_bigrams": compare.IDENTICAL, "vocabulary_size": compare.IDENTICAL,
                        "most_common": compare.IDENTICAL, "documents": compare.IDENTICAL,
                        "least_common_tail": compare.TIES, "sample_data_doc0_first10": compare.IDENTICAL,
                        "sample_data_doc1_first10": compare.TIES}
    assert result["verdict"] == compare.TIES
    assert "'a ' is 82 here, 83 in the book" in result["fields"]["sample_data_doc1_first10"]["note"]


def test_real_differences_are_listed(real_corpus, book_fingerprint):
    ours = copy.deepcopy(fingerprint(real_corpus))
    ours["documents"][5]["bigrams"] += 1
    ours["documents"][7]["first_50_bigrams"][3] = "zz"
    ours["vocabulary_size"] = 545
    result = compare.check_data(ours, book_fingerprint, real_corpus.counter, real_corpus.reverse_dictionary)
    assert result["verdict"] == compare.DIFFERENT
    assert result["fields"]["documents"]["differences"] == [
        f"006.txt: {book_fingerprint['documents'][5]['bigrams'] + 1} bigrams, the book's "
        f"{book_fingerprint['documents'][5]['bigrams']}",
        f"008.txt: bigram 3 is 'zz', the book's {book_fingerprint['documents'][7]['first_50_bigrams'][3]!r}"]
    assert result["fields"]["vocabulary_size"]["differences"] == ["ours 545, the book's 544"]


def test_tie_checks_on_a_hand_made_vocabulary():
    counts = {"a": 5, "b": 5, "c": 3, "x": 1}
    vocabulary = ["UNK", "a", "b", "c"]                 # ids 1-2 share count 5
    bigrams = ["b", "c", "x"]
    assert compare._check_ids([2, 3, 0], [1, 3, 0], bigrams, counts, vocabulary)["status"] == compare.TIES
    outside = compare._check_ids([2, 3, 0], [3, 3, 0], bigrams, counts, vocabulary)
    assert outside["status"] == compare.DIFFERENT and "outside our ids 1-2" in outside["differences"][0]
    unk = compare._check_ids([2, 3, 0], [2, 3, 1], bigrams, counts, vocabulary)   # 'x' is UNK: only id 0
    assert unk["status"] == compare.DIFFERENT
    assert compare._check_tail([["x", 1]], [["y", 1]], {"x": 1, "y": 1})["status"] == compare.TIES
    assert compare._check_tail([["x", 1]], [["y", 1]], {"x": 1, "y": 2})["status"] == compare.DIFFERENT


# ---------------------------------------------------------------- the book's record
def test_the_book_printed_26_stories_of_501_bigrams_per_model():
    for model in book_record.PRINTED_RUNS:
        stories = book_record.printed_stories(model)
        curve = book_record.printed_curve(model)
        assert [step for step, _, _ in stories] == [row["step"] for row in curve] == list(range(1, 27))
        assert [valid for _, valid, _ in stories] == [row["valid_perplexity"] for row in curve]
        assert all(len(text_metrics.model_bigrams(story)) == 501 for _, _, story in stories)
    summary = compare.curve_summary(book_record.printed_curve("lstm"))
    assert (summary["best_valid"], summary["best_step"], summary["last_valid"]) == (18.26, 25, 21.96)
    assert summary["reductions_after_steps"] == [9, 15, 24]
    gru = compare.curve_summary(book_record.printed_curve("gru"))
    assert (gru["best_valid"], gru["best_step"], gru["last_valid"]) == (16.17, 20, 17.35)


def test_the_record_reads_the_golden_files_as_they_are(golden_dir, book_fingerprint):
    rows = list(csv.DictReader(open(golden_dir / "book_ch8_perplexity.csv")))
    gru_rows = [row for row in rows if row["model"] == "gru_dropout0.2"]
    assert [row["train_perplexity"] for row in book_record.printed_curve("gru")] == \
        [float(row["train_perplexity"]) for row in gru_rows]
    assert book_record.corpus_fingerprint() == book_fingerprint
    sample = (golden_dir / "book_ch8_lstm_sample.txt").read_text()
    assert "\n" in sample.strip() and "\n" not in book_record.article_sample()
    assert book_record.article_sample().split() == sample.split()
    assert book_record.batch_example().startswith("Unrolled index 0\n")
    assert book_record.STORIES_MANIFEST.is_file()
    with pytest.raises(ValueError, match="no run 'peephole'"):
        book_record.printed_curve("peephole")


def test_a_missing_golden_file_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(book_record, "FOLDER", tmp_path)
    book_record._text.cache_clear()
    try:
        with pytest.raises(UserError, match=r"book_ch8_perplexity.csv: cannot read .*reproduce/golden/ again$"):
            book_record.printed_curve("lstm")
    finally:
        book_record._text.cache_clear()


# ---------------------------------------------------------------- reports of real runs
def test_compare_one_run_writes_figures_and_the_three_parts(lstm_run):
    story = run_here("generate", "--checkpoint", lstm_run, "--length", "40", "--output", lstm_run / "story.txt")
    assert story.returncode == 0, story.stderr
    result = run_here("compare", "--run", lstm_run)
    assert result.returncode == 0, result.stderr
    assert "data: different" in result.stdout and "report.md" in result.stdout

    for name in ("curves.png", "story_measures.png"):
        assert_png(lstm_run / name)
    report_md = (lstm_run / "report.md").read_text()
    for heading in ("## 1. Data: different", "## 2. Learning curves", "## 3. The story",
                    "![train and valid perplexity](curves.png)",
                    "| book LSTM | 61.50 | 18.26 (step 25) | 21.96 | 9, 15, 24 | 26 |",
                    "013.txt-100.txt not read", "Perplexity of the article's sample", "| story.txt | verdict |"):
        assert heading in report_md

    report = json.loads((lstm_run / "report.json").read_text())
    assert report["data"]["verdict"] == compare.DIFFERENT        # 12 stories, not the book's 100
    assert report["learning_curves"]["ours"]["steps"] == 4
    story_part = report["story"]
    assert len(story_part["book_stories"]) == 17                  # the book's stories of steps 10-26
    assert set(story_part["verdicts"].values()) <= {"inside", "outside"}
    sample = story_part["article_sample"]
    best_step = json.loads((lstm_run / "best" / "best.json").read_text())["step"]
    assert sample["checkpoint"] == f"best/model-{best_step}"                  # the run's best checkpoint
    # An untrained 16-unit model: perplexity of the order of the vocabulary (381 entries), finite and > 1.
    assert 50 < sample["perplexity"] < 2000
    assert story_part["story_txt"]["measures"]["unk_rate"] is not None


def test_compare_several_runs_draws_them_beside_the_book(lstm_run, tmp_path, grimm_dir):
    gru_run = train_tiny(tmp_path / "gru", grimm_dir, "--recipe", "book-gru")
    out = tmp_path / "both"
    result = run_here("compare", "--run", lstm_run, "--run", gru_run, "--out", out)
    assert result.returncode == 0, result.stderr
    for name in ("comparison.png", "run1-curves.png", "run1-story_measures.png", "run2-curves.png"):
        assert_png(out / name)
    report_md = (out / "report.md").read_text()
    for line in ("| book LSTM | printed by the book | 18.26 (step 25) | 21.96 | 26 |",
                 "| book GRU | printed by the book | 16.17 (step 20) | 17.35 | 26 |",
                 "| book (lstm) | `run` |", "| book-gru (gru) | `gru` |", "## Run 2: gru", "### 3. The story"):
        assert line in report_md
    report = json.loads((out / "report.json").read_text())
    assert [r["cell"] for r in report["runs"]] == ["lstm", "gru"]
    assert report["runs"][1]["story"]["book_model"] == "gru"     # a GRU is judged against the book's GRU
    assert set(report["runs"][1]["learning_curves"]["book"]) == {"lstm", "gru"}


def test_compare_mistakes_are_one_line(lstm_run, tmp_path, capsys):
    from reproduce.main import main
    assert main(["compare", "--run", str(tmp_path / "nothing")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no such folder" in error and "Traceback" not in error
    (tmp_path / "file").write_text("")
    assert main(["compare", "--run", str(tmp_path), "--out", str(tmp_path / "file")]) == 1   # not a run folder
    assert "not a run folder" in capsys.readouterr().err
    assert main(["compare", "--run", str(lstm_run), "--out", str(tmp_path / "file")]) == 2
    assert "a file is in the way" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["compare"])
    assert stop.value.code == 2 and "--run" in capsys.readouterr().err
