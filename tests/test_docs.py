"""The README and docs/*.md agree with the reports they quote, link only to files in the repository and to
headings that exist, and show only commands the command line accepts."""
import json
import re
import shlex
import subprocess

import pytest

from reproduce import doc_tables

ROOT = doc_tables.ROOT
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
MAIN = "python reproduce/main.py"


def test_every_table_agrees_with_its_report():
    assert doc_tables.check() == []


def test_the_check_names_the_page_and_table_that_differ(tmp_path, monkeypatch):
    page = tmp_path / "README.md"
    page.write_text("x\n<!-- table: main-job -->\n| stale |\n<!-- /table -->\n", encoding="utf-8")
    monkeypatch.setattr(doc_tables, "ROOT", tmp_path)
    monkeypatch.setattr(doc_tables, "pages", lambda: [page])
    assert doc_tables.check() == ["README.md: table main-job differs from its report"]
    assert doc_tables.main(["--check"]) == 1
    assert doc_tables.main([]) == 0 and doc_tables.check() == []
    assert "| stale |" not in page.read_text(encoding="utf-8") and "| first valid |" in page.read_text(encoding="utf-8")


def links():
    for page in doc_tables.pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
                yield page, target.split("#")[0]


def test_every_relative_link_resolves_to_a_file_in_the_repository():
    found = list(links())
    assert len(found) > 20
    missing = [f"{page.relative_to(ROOT)}: {target}" for page, target in found if not (page.parent / target).exists()]
    assert missing == []
    paths = "\n".join(str((page.parent / target).resolve().relative_to(ROOT)) for page, target in found)
    try:
        ignored = subprocess.run(["git", "check-ignore", "--stdin"], input=paths, capture_output=True, text=True,
                                 cwd=ROOT, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("no git to ask which files it ignores")
    if ignored.returncode == 128:       # not a git checkout
        pytest.skip(ignored.stderr.strip())
    assert ignored.stdout.split() == [], "links to files git does not keep"


def anchors(page):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.*)$", text, re.M)}


def test_every_link_to_a_heading_finds_it():
    wrong = []
    for page in doc_tables.pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            path, _, anchor = target.partition("#")
            if anchor and not re.match(r"[a-z]+:", target):
                linked = (page.parent / path) if path else page
                if linked.suffix == ".md" and anchor not in anchors(linked):
                    wrong.append(f"{page.relative_to(ROOT)}: {target}")
    assert wrong == []


def shown_commands():
    """Every `python reproduce/main.py …` of a code block in README.md and docs/*.md."""
    text = "\n".join(page.read_text(encoding="utf-8") for page in doc_tables.pages())
    for block in CODE_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if part.startswith(MAIN):
                    yield part


def test_the_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()[-1].strip()
    assert ci.startswith("pip install -r requirements.txt && python -m pytest -q")
    assert f"```\n{ci}\n```" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_shown_parses():
    from reproduce.main import build_parser
    commands = list(shown_commands())
    assert len(commands) >= 20
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[len(MAIN.split()):])
        except SystemExit:
            pytest.fail(f"a command shown in the docs does not parse: {command}")


def test_a_classic_runs_forks_column_is_read_for_both_aesop_recipes(tmp_path):
    """metrics.csv's forks column as aesop-word and aesop-context write it, and the walk's read-last beside it."""
    word_rows = [{"forks": "the cat . -> some 0.121 by 0.878; up and said -> he 0.040 that 0.958"},
                 {"forks": "the cat . -> some 0.700 by 0.300; up and said -> he 0.600 that 0.400"}]
    walk = {"the cat .": {"read_last": [None, "some"], "iterations_before_the_end": {"some": 3, "by": 29}},
            "up and said": {"read_last": ["that", "that"], "iterations_before_the_end": {"he": 40, "that": 9}}}
    run = doc_tables.ClassicRun(tmp_path, {"seed": 4}, word_rows, {"walk": walk, "forks": []})
    assert run.fork("the cat .") == {"some": 0.7, "by": 0.3} and run.fork("up and said", word_rows[0]) == \
        {"he": 0.04, "that": 0.958}
    assert run.read_last("the cat .") == ("some", {"some": 3, "by": 29})
    assert (run.leads("the cat ."), run.leads("up and said")) == ((1, 1), (1, 2))     # None: neither read yet
    context_rows = [{"forks": "the cat . -> some 1.000 (word 26), by 0.998 (word 130); up and said -> he 0.997 "
                              "(word 44), that 1.000 (word 168)"}]
    context = doc_tables.ClassicRun(tmp_path, {"seed": 0}, context_rows, None)
    assert context.fork("the cat .") == {"some": 1.0, "by": 0.998}


def seed_folder(folder, seed, rows):
    (folder / f"seed-{seed}").mkdir(parents=True)
    lines = ["step,train_perplexity,valid_perplexity"] + [f"{i + 1},{t},{v}" for i, (t, v) in enumerate(rows)]
    (folder / f"seed-{seed}" / "metrics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_same_seeds_says_identical_only_for_the_same_figures_and_lists_only_shared_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    monkeypatch.setattr(doc_tables, "study_machines", lambda page, *folders: "here")
    seed_folder(tmp_path / "a", 0, [(30.0, 40.0), (10.0, 20.0)])
    seed_folder(tmp_path / "a", 1, [(30.0, 40.0), (10.0, 20.0)])
    seed_folder(tmp_path / "b", 0, [(30.0, 40.0), (10.0, 20.0)])       # seed 0 the same, seed 1 absent
    seed_folder(tmp_path / "c", 0, [(30.0, 40.0), (11.0, 19.0)])       # train 10 % above, valid 5 % below
    rows = doc_tables.same_seeds(tmp_path / "page.md", "a,b,c").splitlines()
    assert [row.split(" | ")[0] for row in rows if row.startswith("| ") and row[2].isdigit()] == ["| 0"]
    assert rows[2] == "| 0 | 20.0000 | 20.0000 | 19.0000 | identical, identical | 10 %, 5 % |"


def test_same_seeds_links_a_record_to_the_records_readme_and_shows_a_studys_held_out_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    monkeypatch.setattr(doc_tables, "study_machines", lambda page, *folders: "here")
    seed_folder(tmp_path / "study", 0, [(30.0, 40.0)])
    (tmp_path / "study" / "report.md").write_text("a report\n", encoding="utf-8")
    seed_folder(tmp_path / "machines" / "record", 0, [(30.0, 40.0)])
    (tmp_path / "study" / "report.json").write_text(json.dumps({"heldout": {"by_seed": {"0": {
        "best_perplexity": 51.234}}}}), encoding="utf-8")
    rows = doc_tables.same_seeds(tmp_path / "page.md", "study,machines/record").splitlines()
    assert "[study](study/report.md): best valid (held-out)" in rows[0]
    assert "[record](machines/README.md): best valid (held-out)" in rows[0]
    assert rows[2] == "| 0 | 40.0000 (51.23) | 40.0000 | identical, identical |"


def test_outside_lists_each_step_a_printed_curve_leaves_with_its_distance_from_the_median(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    printed = doc_tables.book_record.printed_curve("gru")
    band = {"min": 1.0, "median": printed[2]["train_perplexity"] / 1.25, "max": 2.0}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "report.json").write_text(json.dumps({
        "book_run": "book GRU", "per_step": [{"step": 3, "train": band, "valid": band}],
        "steps_outside": {"train": {"steps": [3]}, "valid": {"steps": []}}}), encoding="utf-8")
    rows = doc_tables.outside(tmp_path / "page.md", "s").splitlines()
    assert len(rows) == 3 and rows[2].startswith(f"| 3 | train | {printed[2]['train_perplexity']:.2f} | 1.00 – ")
    assert rows[2].endswith("| +25.0 % |")


def test_cells_ranked_orders_the_cells_and_names_pairs_apart_and_overlapping(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "ROOT", tmp_path)
    heldout = doc_tables.HELDOUT_FIGURES["best"]
    studies = []
    for name, cell, valid, scored in (("s-lstm", "lstm", 16.1, 21.0), ("s-peep", "peephole", 17.7, None),
                                      ("s-gru", "gru", 15.5, 19.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"ranks": {"first valid perplexity": {
            "seeds": [valid * 3, valid * 4]}}}), encoding="utf-8")
        studies.append({"name": name, "folder": name, "cell": cell, "bands": {
            "best valid perplexity": {"median": valid}, heldout: scored and {"median": scored}}})
    pairs = [{"studies": ["s-lstm", "s-peep"], "apart": True, "heldout": {"apart": None}},
             {"studies": ["s-lstm", "s-gru"], "apart": False, "heldout": {"apart": True}},
             {"studies": ["s-peep", "s-gru"], "apart": True, "heldout": {"apart": None}}]
    lines = doc_tables.cells_ranked({"studies": studies, "pairs": pairs})
    assert lines[0] == ("- **best valid perplexity (500 bigrams)**, medians: gru 15.50 < lstm 16.10 < peephole 17.70; "
                        "apart: lstm/peephole, peephole/gru; overlapping: lstm/gru.")
    assert lines[1] == ("- **held-out perplexity (stories 101–209, best checkpoint)**, medians: gru 19.00 < lstm 21.00; "
                        "apart: lstm/gru; overlapping: none.")
    assert lines[2] == "- first valid perplexity: lstm 56.35 (48.30 – 64.40), peephole 61.95 (53.10 – 70.80), gru 54.25 (46.50 – 62.00)."


def test_made_on_names_each_machine_once_with_every_commit_it_ran(tmp_path):
    def environment(name, cpu, flags, commit, cores, settings=None):
        path = tmp_path / name / "environment.json"
        path.parent.mkdir()
        path.write_text(json.dumps([{"cpu": cpu, "cpu_flags": flags, "kernel_settings": settings or {},
                                     "python": "3.11.7", "tensorflow": "2.21.0", "numpy": "2.4.6", "cores": cores,
                                     "git": {"commit": commit}, "recorded": "2026-12-03T10:00:00+00:00"}]))
        return path
    runs = [environment("a", "EPYC", ["avx2", "avx512f"], "aaaaaaa1", 1),
            environment("b", "EPYC", ["avx2", "avx512f"], "aaaaaaa1", 1),      # the same commit: named once
            environment("c", "EPYC", ["avx2", "avx512f"], "bbbbbbb2", 2),
            environment("d", "EPYC", ["avx2", "avx512f"], "bbbbbbb2", 1, {"ONEDNN_MAX_CPU_ISA": "AVX2"})]
    line = doc_tables.made_on(tmp_path / "page.md", runs)
    assert line.count("EPYC (AVX-512), Python") == 1 and line.count("aaaaaaa") == 1
    assert "at commits aaaaaaa (1 core, 2026-12-03, [environment.json](a/environment.json)), bbbbbbb (2 cores" in line
    assert "; EPYC (AVX-512, ONEDNN_MAX_CPU_ISA=AVX2), Python 3.11.7, TensorFlow 2.21.0, numpy 2.4.6, at commit bbbbbbb (1 core" in line


def test_the_readme_held_out_table_keeps_the_studies_of_their_recipes_own_graph_and_gradient(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    monkeypatch.setattr(doc_tables, "SAMPLE", tmp_path / "no-main-job")
    (tmp_path / "no-main-job").mkdir()
    (tmp_path / "no-main-job" / "report.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(doc_tables, "study_machines", lambda page, *folders, environments=(): "here")
    for name, options in (("study-a", {"graph": "fast"}), ("study-b", {"graph": "faithful"}),
                          ("study-c", {"state_variables": "resource"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"recipe": "book-gru", "options": options, "heldout": {
            "seeds": [0], "spearman": None, "by_seed": {"0": {"best_valid_perplexity": 15.0, "best_perplexity": 19.0,
                                                              "last_perplexity": 19.5}}}}), encoding="utf-8")
    assert [run.recipes_own_maths for run in doc_tables.heldout_runs()[0]] == [True, False, False]
    rows = doc_tables.heldout_short(tmp_path / "page.md").splitlines()
    assert [row.split("]")[0] for row in rows[2:-2]] == ["| [study-a"]


def test_word_vectors_sets_each_studys_perplexity_side_by_side_and_bolds_the_neighbours_its_log_printed(
        tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    monkeypatch.setattr(doc_tables, "study_machines", lambda page, *folders: "here")
    step, printed = doc_tables.book_record.printed_cbow_neighbours()
    assert step == 10 and printed["said"] == ["replied", "answered", "cried", "spoke"] and len(printed) == 16
    for (label, name), source, heldout in zip(doc_tables.WORD_VECTOR_STUDIES.items(), ("book", "cbow"), (300.0, None)):
        neighbours = {word: ["x", "y", "z", "w", "v"] for word in printed}
        neighbours["said"] = ["spoke", "x", "replied", "y", "answered"]         # the 5th is not shown
        del neighbours["my"]                                                    # its count is shared: not searched
        (tmp_path / name / "seed-0").mkdir(parents=True)
        (tmp_path / name / "seed-0" / "embeddings.json").write_text(json.dumps({
            "source": source, "probe_neighbours": neighbours,
            "probe_neighbours_among": "the 147 ids whose count no other word has"}), encoding="utf-8")
        (tmp_path / name / "report.json").write_text(json.dumps({
            "finished_seeds": [0, 1, 2],
            "figures_by_seed": {str(s): {"train perplexity at step 1": 40.0 + s, "first valid perplexity": 900.0 - s,
                                         "best valid perplexity": 100.0 + s} for s in (0, 1, 2)},
            "heldout": {"bands": {"best": {"median": heldout, "min": heldout, "max": heldout, "n": 3}}}
            if heldout else None}), encoding="utf-8")
    rows = doc_tables.word_vectors(tmp_path / "page.md").splitlines()
    assert rows[2] == ("| [the book's `embeddings.npy`](study-book-words/report.md) | 3 | 41.00 (40.00 – 42.00) | "
                       "899.00 (898.00 – 900.00) | 101.00 (100.00 – 102.00) | 300.00 (300.00 – 300.00) |")
    assert rows[3].endswith("| 101.00 (100.00 – 102.00) | – |")
    assert rows[5] == ("| probe word | the book's CBOW log (step 10) | the book's `embeddings.npy` | ours: CBOW learnt "
                       "first (`--embeddings cbow`), seed 0 |")
    said = next(row for row in rows if row.startswith("| said |"))
    assert said == ("| said | replied, answered, cried, spoke | **spoke**, x, **replied**, y | "
                    "**spoke**, x, **replied**, y |")
    assert next(row for row in rows if row.startswith("| my |")) == "| my | your, his, our, its | – | – |"
    assert "the book's `embeddings.npy`: 2 of 60; ours: CBOW learnt first (`--embeddings cbow`), seed 0: 2 of 60" \
        in rows[-1]
    short = doc_tables.word_vectors_short(tmp_path / "page.md").splitlines()
    assert short[:4] == rows[:4] and short[-1].startswith(
        "Median (min – max) over seeds. Of the nearest neighbours the book's CBOW log printed for its probe words (the "
        "first 4 of each of the 15 whose count no other word shares), each set of vectors gives: the book's "
        "`embeddings.npy`: 2 of 60; ours: CBOW learnt first (`--embeddings cbow`), seed 0: 2 of 60. ")


def test_band_names_the_printed_steps_a_shorter_study_compares_and_state_variables_only_where_the_recipe_has_them(
        tmp_path, monkeypatch):
    monkeypatch.setattr(doc_tables, "DOCS", tmp_path)
    monkeypatch.setattr(doc_tables, "study_machines", lambda page, *folders: "here")
    entry = {"book": 80.0, "seeds": [70.0, 90.0], "rank": 2, "of": 3, "inside": True}
    for name, options in (("words", {"doc_order": "book"}), ("bigrams", {"state_variables": "reference"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({
            "ranks": dict.fromkeys(doc_tables.BAND_FIGURES, entry), "options": options, "recipe": "r",
            "verdict": "inside: the book's 80.00 ranks 2 of 3", "finished_seeds": [0, 1], "book_run": "book run",
            "compared_steps": 26, "printed_steps": 197 if name == "words" else 26}), encoding="utf-8")
    words = doc_tables.band(tmp_path / "page.md", "words").splitlines()
    assert words[2] == "| first valid perplexity | 80.00 | 70.00 – 90.00 | inside, rank 2 of 3 |"
    assert words[-1].startswith("**Verdict (computed by `study`): inside: the book's 80.00 ranks 2 of 3** (2 seeds of "
                                "`r`, the book run's documents, the first 26 of its 197 printed steps). Made on: here.")
    assert doc_tables.verdict(tmp_path / "page.md", "words") == words[-1]        # the README's one-line form
    bigrams = doc_tables.band(tmp_path / "page.md", "bigrams").splitlines()
    assert "(2 seeds of `r`, the book run's documents, reference state variables)." in bigrams[-1]
