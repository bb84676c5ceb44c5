"""`--doc-order book`: the documents the book's printed runs drew, as data, replayed step by step."""
import json
import re

from conftest import TINY, run_cli, run_here
from reproduce.book_record import PRINTED_RUNS, printed_documents, printed_output

# The main notebook prints `Training (Step: 0) (16).(96).(81)...`, the extensions notebook bare
# `(98).(25).(91)...` lines: one `(id).` per document as its 100 iterations start.
PRINTED_DOCUMENTS = re.compile(r"^(?:Training \(Step: \d+\) )?((?:\(\d+\)\.)+)\s*$", re.M)


def parse_printed_documents(output):
    """A printed training output -> the document ids drawn at each step, [[16, 96, 81, ...], ...]."""
    return [[int(i) for i in re.findall(r"\((\d+)\)", line)] for line in PRINTED_DOCUMENTS.findall(output)]


def test_the_order_file_holds_what_the_printed_outputs_list(golden_dir):
    order = json.loads((golden_dir / "book_ch8_document_order.json").read_text())
    for model in PRINTED_RUNS:
        steps = parse_printed_documents(printed_output(model))
        assert len(steps) == 26 and all(len(step) == 10 for step in steps), model
        assert all(0 <= doc < 100 for step in steps for doc in step)
        assert order[model] == steps == printed_documents(model), model
    assert order["lstm"][0] == [16, 96, 81, 36, 54, 58, 57, 20, 12, 82]     # `Training (Step: 0) (16).(96)...`
    assert order["gru"][0] == [98, 25, 91, 5, 88, 49, 85, 96, 14, 73]       # the GRU output's first line


def _state(run_dir, step):
    return json.loads((run_dir / "ckpt" / f"state-{step}.json").read_text())


def test_a_run_in_the_books_order_trains_the_books_documents(grimm_dir, golden_dir, tmp_path):
    order = json.loads((golden_dir / "book_ch8_document_order.json").read_text())
    runs = {}
    for recipe, doc_order in (("book", "book"), ("book-gru", "book"), ("book", "random"),
                              ("book-peephole", "book-gru")):
        run_dir = tmp_path / f"{recipe}-{doc_order}"
        result = run_here("train", "--recipe", recipe, "--stories-dir", grimm_dir, *TINY, "--num-files", "100",
                          "--num-steps", "2", "--doc-order", doc_order, "--seed", "4", "--run-dir", run_dir)
        assert result.returncode == 0, result.stderr
        runs[recipe, doc_order] = [row["documents"] for row in _state(run_dir, 2)["history"]]
    assert runs["book", "book"] == [step[:2] for step in order["lstm"][:2]]            # --docs-per-step 2
    assert runs["book-gru", "book"] == [step[:2] for step in order["gru"][:2]]
    assert runs["book", "random"] != runs["book", "book"]
    assert runs["book-peephole", "book-gru"] == runs["book-gru", "book"]      # the GRU run's documents


def test_the_books_order_needs_its_100_stories_and_at_most_its_26_steps(grimm_dir, tmp_path):
    for run, extra, fragment in ((run_cli, ["--num-steps", "2"], "--num-files 100"),      # a fresh process
                                 (run_here, ["--num-files", "100", "--num-steps", "27"], "--num-steps 27")):
        result = run("train", "--stories-dir", grimm_dir, *TINY, *extra, "--doc-order", "book",
                     "--run-dir", tmp_path / "run")
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr
        assert not (tmp_path / "run").exists()
