"""Smoke test of the benchmark: a tiny configuration, 2 timed iterations, a bench.json with the required keys.

Never a timing assertion: figures come from `bench` at the book's sizes on a quiet machine."""
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

from conftest import run_here

from reproduce import bench_workers
from reproduce.recipes import RECIPES, tiny_options

# The book's tiny configuration (Config.tiny) in the sizes the benchmark takes, then the benchmark's own.
BENCH_SIZES = {"--num-files", "--steps-per-document", "--num-nodes", "--batch-size", "--num-unrollings", "--valid-docs"}
TINY_BENCH = [text for option, value in zip(tiny_options("book")[::2], tiny_options("book")[1::2])
              if option in BENCH_SIZES for text in (option, value)] + \
    ["--generate-length", "20", "--sgemm-size", "128", "--iterations", "2", "--warmup", "1", "--generate-repeats", "1"]
TINY_LAYERS = ["--layer-nodes", RECIPES["book-words-deep"].tiny_values()["layer_nodes"]]      # book-words-deep's


def workers_in_this_process_but_keras(monkeypatch):
    """bench's workers run in this process, where TensorFlow is imported already, except Keras's: it keeps its
    fresh process (the real `python -m reproduce.bench_workers SPEC`), since it needs the eager execution this
    process is without."""
    class Ended:
        returncode = 0

        def wait(self):
            return 0

    def start(command, **options):
        assert command[1:3] == ["-m", "reproduce.bench_workers"], command
        spec = command[3]
        if json.loads(Path(spec).read_text())["name"] == "keras":
            return subprocess.Popen(command, **options)
        bench_workers.worker_main(spec)
        return Ended()
    monkeypatch.setattr(bench_workers, "subprocess", SimpleNamespace(Popen=start))


def test_bench_writes_the_required_keys(tmp_path, grimm_dir, monkeypatch):
    output = tmp_path / "bench.json"
    workers_in_this_process_but_keras(monkeypatch)
    # in tmp_path, where bench records the study layout it measured (checkpoints/study-layout.json)
    result = run_here("bench", *TINY_BENCH, "--no-words", "--stories-dir", grimm_dir, "--output", output,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x fast" in result.stdout and "\nTargets:\n" in result.stdout       # the table
    results = json.loads(output.read_text())
    assert isinstance(results["machine"], str) and results["machine"]
    training = results["train_iteration_ms"]
    assert set(training) == {"literal", "fast", "pytorch", "keras"}
    assert training["literal"] > 0 and training["fast"] > 0
    for peer in ("pytorch", "keras"):                                  # measured, or missing with a reason
        assert (training[peer] is not None and training[peer] > 0) or results["peers_missing"][peer]
    assert set(results["generate_500_s"]) == {"literal", "fast"}
    assert all(seconds > 0 for seconds in results["generate_500_s"].values())
    assert results["generate_same_story_as_literal"]["fast"]
    for key in ("valid_500_s", "peak_rss_mb", "fast_gflops", "sgemm_gflops"):
        assert results[key] > 0, key
    assert results["train_iteration_spread_ms"]["fast"]["n"] == 2
    # The book's other cells on both graphs, and the two ways a study can use the cores.
    assert set(results["cells_train_iteration_ms"]) == {"literal-peephole", "fast-peephole", "literal-gru", "fast-gru"}
    assert all(ms > 0 for ms in results["cells_train_iteration_ms"].values())
    assert set(results["study"]["layouts"]) == {"one process on every core", "one process per core"}
    assert results["study"]["faster"] in results["study"]["layouts"]
    layout = json.loads((tmp_path / "checkpoints" / "study-layout.json").read_text())   # study's default here
    assert layout["jobs"] == results["study"]["layouts"][results["study"]["faster"]]["processes"]
    assert {"peephole fast / LSTM fast <= 1.3", "gru fast / LSTM fast <= 1.3",
            "8-seed study minutes <= 60"} <= set(results["targets"])


def test_bench_times_each_word_recipe_beside_its_obvious_builds(tmp_path, grimm_dir, monkeypatch):
    output = tmp_path / "bench.json"
    workers_in_this_process_but_keras(monkeypatch)
    result = run_here("bench", *TINY_BENCH, *TINY_LAYERS, "--stories-dir", grimm_dir,
                      "--output", output, "--no-cells", "--no-study-layouts", "--peers", "none", "--no-profile",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    recipes = results["words"]["recipes"]
    assert set(recipes) == {"book-words", "book-words-deep"}
    for recipe, costs in recipes.items():
        contenders = {name for name, (of, _) in bench_workers.WORD_CONTENDERS.items() if of == recipe}
        assert set(costs["iteration_spread_ms"]) == contenders and set(costs["ratios"]) == contenders - {recipe}
        assert all(spread["median"] > 0 and spread["n"] == 2 for spread in costs["iteration_spread_ms"].values())
        assert all(ratio > 0 for ratio in costs["ratios"].values())
        assert costs["step_s"] > costs["validation_s"] + costs["beam_text_s"] > 0
        assert [run["steps"] for run in costs["runs"]] == ([26] if recipe == "book-words" else [197, 251])
        for how in {how for name, (of, how) in bench_workers.WORD_CONTENDERS.items() if of == recipe} - {"recipe"}:
            target = f"{recipe} / {how} <= 1.5"
            assert target in results["targets"] and target in result.stdout
    assert "Word recipes at their own sizes" in result.stdout


def test_a_peer_that_cannot_be_loaded_is_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)      # `import torch` now fails
    output = tmp_path / "pytorch.result.json"
    spec = tmp_path / "pytorch.spec.json"
    spec.write_text(json.dumps({"name": "pytorch", "output": str(output)}))
    bench_workers.worker_main(spec)
    outcome = json.loads(output.read_text())
    assert outcome["missing"] and "torch" in outcome["error"]


def test_an_output_in_a_missing_folder_is_one_line_before_any_measuring(tmp_path, grimm_dir):
    output = tmp_path / "missing" / "bench.json"
    result = run_here("bench", *TINY_BENCH, "--stories-dir", grimm_dir, "--output", output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr               # no `[bench]` line either
    assert lines[0].startswith(f"error: {output}: cannot write it (no such file or folder)")
    assert not output.parent.exists()
