"""notebooks/chapter8.ipynb: committed with its outputs, and executed top to bottom on its small setting with
fewer iterations per step (its own SMALL parameters, changed in the cell before it runs)."""
import csv

import nbformat
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "chapter8.ipynb"
# The small setting's loop, and the one the test runs: 5 steps of 1 document x 10 iterations, not 3 x 40 (the
# stories, the model's sizes and every cell stay the notebook's).
SMALL_LOOP, TEST_LOOP = "docs_per_step=3, steps_per_document=40", "docs_per_step=1, steps_per_document=10"


def _text(cell):
    return "".join(output.get("text", "") + output.get("data", {}).get("text/markdown", "")
                   for output in cell.outputs)


def test_the_committed_notebook_reads_without_running():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs for cell in code), "commit the notebook with the outputs of its default setting"
    assert all(output.output_type != "error" for cell in code for output in cell.outputs)
    assert sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs) >= 2
    assert "FULL_RUN = False" in code[0].source
    assert not any(marker in _text(cell) for cell in code for marker in ("/work/", "/tmp/", "/root/"))


def test_the_notebook_runs_top_to_bottom(grimm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIMM_STORIES_DIR", str(grimm_dir))
    monkeypatch.setenv("CHAPTER8_RUNS_DIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (setting,) = [cell for cell in notebook.cells if SMALL_LOOP in cell.source]
    setting.source = setting.source.replace(SMALL_LOOP, TEST_LOOP)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()     # raises when a cell fails
    outputs = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "verdict: identical up to the order of equal counts" in outputs
    assert "the same bigrams in the same places: True" in outputs
    assert "step 5/5" in outputs and "--- beam ---" in outputs
    (run,) = tmp_path.iterdir()
    rows = list(csv.DictReader(open(run / "evaluate-91-100.csv")))
    assert [row["story"] for row in rows][-2:] == ["100.txt", "all"]
    assert f"perplexity {float(rows[-1]['perplexity']):.2f} over" in outputs
