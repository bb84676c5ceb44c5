"""The tables of numbers in README.md and docs/*.md, written from the reports the code wrote.

    python -m reproduce.doc_tables            rewrite every table between its markers
    python -m reproduce.doc_tables --check    exit 1 naming each page and table that differ

A table sits between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of TABLES, or
`study:FOLDER` for a study exported under docs/ (its report.json). The sources: docs/sample-report/
(report.json, metrics.csv, environment.json: the main job), docs/study-*/ (report.json, seed-*/metrics.csv
and environment.json), docs/extensions-bands/comparison.json, docs/classics-cells.csv,
docs/classics-context-probe.csv, the classics' runs in docs/classics/NAME/ (config.json, environment.json,
metrics.csv and, for the Aesop recipes, story.json: `generate --report`), what the Aesop article printed
(book_record) and, once a bench run is kept there, docs/speed-bench.json. No figure is held here: replace a
report (a new run copied into docs/sample-report/ or docs/classics/, say), run this, commit the pages. The
check reads JSON and CSV and builds no graph, so it takes seconds at most.
"""
import argparse
import csv
import dataclasses
import json
import os
import re
import statistics
import sys
from pathlib import Path

from reproduce import book_record, provenance, recipes
from reproduce.classics import fable
from reproduce.classics.configs import FABLE
from reproduce.files import write_atomic
from reproduce.study_comparison import PRINTED, unit
from reproduce.study_report import HELDOUT_FIGURES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = DOCS / "sample-report"
BENCH = DOCS / "speed-bench.json"
CLASSICS = DOCS / "classics"
MARKER = re.compile(r"(<!-- table: (?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)
BAND_FIGURES = ("first valid perplexity", "best valid perplexity", "step of the best valid perplexity",
                "last valid perplexity", "learning-rate halvings")


def pages():
    """README.md, every docs/*.md and the machine records' README, in a fixed order."""
    return [ROOT / "README.md"] + sorted(DOCS.glob("*.md")) + sorted(DOCS.glob("machines/*.md"))


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def link(page, target, text=None):
    """A markdown link from `page` to the repository file `target`."""
    relative = os.path.relpath(target, page.parent)
    return f"[{text or Path(relative).name}]({relative})"


def machine(page, environment_json):
    """One line naming the machine of a run: the first session of its environment.json, linked."""
    return made_on(page, [environment_json])


def machine_name(entry):
    """The CPU (its instruction set and any setting that restricts its kernels) and the versions of a session."""
    flags = entry.get("cpu_flags", [])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    isa += provenance.kernel_settings_text(entry)
    return (f"{entry['cpu']} ({isa}), Python {entry['python']}, TensorFlow {entry['tensorflow']}, "
            f"numpy {entry['numpy']}")


def made_on(page, environments):
    """The machines of the runs whose environment.json files are `environments`, each named once, followed by
    each commit (and core count) it ran, linked through the first file that has it."""
    runs = {}
    for env in environments:
        entry = read_json(env)[0]
        run = (entry["git"]["commit"][:7], provenance.cores_text(entry["cores"]))
        runs.setdefault(machine_name(entry), {}).setdefault(run, (entry["recorded"][:10], env))
    return "; ".join(
        f"{name}, at commit{'s' if len(commits) > 1 else ''} " + ", ".join(
            f"{commit} ({cores}, {day}, {link(page, env)})" for (commit, cores), (day, env) in commits.items())
        for name, commits in runs.items())


def minutes(seconds):
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"


def step_seconds(metrics_csv):
    return [float(row["seconds"]) for row in read_csv(metrics_csv)]


def halvings(steps):
    return ", ".join(map(str, steps)) or "none"


# ---------------------------------------------------------------- the tables


def main_job(page):
    """The main job's run (docs/sample-report) beside the book's printed run: curves, the book's sample
    under its model, the story measures, its time."""
    report = read_json(SAMPLE / "report.json")
    curves, story = report["learning_curves"], report["story"]
    book_model = story["book_model"]
    rows = [(f"this run (`{report['recipe']}`, seed {report['seed']})", curves["ours"]),
            (f"the book's printed run ({book_model.upper()})", curves["book"][book_model])]
    lines = ["| | first valid | best valid (step) | last valid | learning rate halved after steps |",
             "|---|---|---|---|---|"]
    for label, c in rows:
        lines.append(f"| {label} | {c['first_valid']:.2f} | {c['best_valid']:.2f} ({c['best_step']}) | "
                     f"{c['last_valid']:.2f} | {halvings(c['reductions_after_steps'])} |")
    sample = story["article_sample"]
    inside = sum(v == "inside" for v in story["verdicts"].values())
    seconds = step_seconds(SAMPLE / "metrics.csv")
    lines += ["", f"The book's printed sample has perplexity {sample['perplexity']:.2f} under this run's "
              f"`{sample['checkpoint']}` (valid perplexity {sample['checkpoint_valid_perplexity']:.2f}); "
              f"{inside} of {len(story['verdicts'])} story measures fall inside the range of the book's printed "
              f"stories.{heldout_sentence(report.get('heldout'))} Its {len(seconds)} steps took {minutes(sum(seconds))} in all (`metrics.csv`, column "
              f"`seconds`: training, validation and a story per step). Made on: "
              f"{machine(page, SAMPLE / 'environment.json')}."]
    return "\n".join(lines)


def heldout_sentence(scored):
    """' On the N stories the book never read ... ' from report.json's `heldout`, or nothing."""
    if not scored:
        return ""
    best = scored["best"]
    return (f" On the {scored['scored']} stories the book never read ({scored['stories']}) the same checkpoint has "
            f"perplexity {best['perplexity']:.2f}.")


def heldout(page):
    """The main job's best checkpoint on the stories the book never read (its heldout.json, in report.json)."""
    scored = read_json(SAMPLE / "report.json").get("heldout")
    if not scored:
        return "(The sample report has no held-out figures.)"
    best = scored["best"]
    per_story = sorted(best["per_story"].values())
    return "\n".join([
        "| checkpoint | valid perplexity (500 bigrams) | held-out perplexity (pooled) | stories | bigrams scored | "
        "per story: min – median – max | UNK share |",
        "|---|---|---|---|---|---|---|",
        f"| `{best['checkpoint']}` (step {best['step']}) | {best['valid_perplexity']:.2f} | {best['perplexity']:.2f} | "
        f"{scored['scored']} ({scored['stories']}) | {best['bigrams']:,} | {per_story[0]:.2f} – "
        f"{per_story[len(per_story) // 2]:.2f} – {per_story[-1]:.2f} | {100 * best['unk_share']:.2f}% |",
        "", f"The main job's run ({link(page, SAMPLE / 'report.md', 'sample report')}); scored in "
        f"{best['seconds']:.1f} s. Made on: {machine(page, SAMPLE / 'environment.json')}."])


def median_range(values, digits=2, unit=""):
    """`median (min – max)` of `values`, or of a band already summed up as {median, min, max}; one value alone."""
    if isinstance(values, dict):
        median, low, high = values["median"], values["min"], values["max"]
    else:
        values = sorted(values)
        if len(values) == 1:
            return f"{values[0]:.{digits}f}{unit}"
        median, low, high = statistics.median(values), values[0], values[-1]
    return f"{median:.{digits}f}{unit} ({low:.{digits}f} – {high:.{digits}f})"


@dataclasses.dataclass
class HeldoutRun:
    """A run or study with held-out figures, each listed per seed."""
    folder: Path                  # where its report.md is
    recipe: str
    valid: list                   # valid perplexity of the best checkpoint
    best: list                    # held-out perplexity of the best checkpoint
    last: list                    # ... of the last checkpoint (none for the main job)
    spearman: float = None        # valid vs held-out over the seeds (a study)
    recipes_own_maths: bool = True   # trained with its recipe's graph and gradient (no --graph/--state-variables)

    @property
    def is_main_job(self):
        return self.folder == SAMPLE

    def name(self, page):
        return link(page, self.folder / "report.md", "the main job" if self.is_main_job else self.folder.name)


def heldout_runs():
    """(the runs with held-out figures: the main job's, then every study exported under docs/ whose seeds were
    scored; the studies without them)."""
    runs, unscored = [], []
    report = read_json(SAMPLE / "report.json")
    if report.get("heldout"):
        best = report["heldout"]["best"]
        runs.append(HeldoutRun(SAMPLE, report["recipe"], [best["valid_perplexity"]], [best["perplexity"]], []))
    for folder in sorted(DOCS.glob("study-*")):
        report = read_json(folder / "report.json")
        section = report.get("heldout") or {"seeds": []}
        if not section["seeds"]:
            unscored.append(folder)
            continue
        rows = list(section["by_seed"].values())
        defaults = recipes.recipe_config(report["recipe"])
        own_maths = all(report["options"].get(knob, getattr(defaults, knob)) == getattr(defaults, knob)
                        for knob in ("graph", "state_variables"))
        runs.append(HeldoutRun(folder, report["recipe"], [r["best_valid_perplexity"] for r in rows],
                               [r["best_perplexity"] for r in rows], [r["last_perplexity"] for r in rows],
                               section["spearman"], own_maths))
    return runs, unscored


def heldout_by_recipe(page):
    """Held-out perplexity per recipe beside valid (median and range over a study's seeds), every scored run."""
    runs, unscored = heldout_runs()
    lines = ["| run | recipe | seeds | valid perplexity, best checkpoint | held-out, best checkpoint | held-out, last "
             "checkpoint | Spearman: valid vs held-out |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        rho = "" if run.is_main_job else "–" if run.spearman is None else f"{run.spearman:+.2f}"
        lines.append(f"| {run.name(page)} | `{run.recipe}` | {len(run.valid)} | {median_range(run.valid)} | "
                     f"{median_range(run.best)} | {median_range(run.last) if run.last else ''} | {rho} |")
    if unscored:
        lines += ["", "Without held-out figures (their seeds' summaries hold none): "
                  f"{', '.join(link(page, folder / 'report.md', folder.name) for folder in unscored)}."]
    return "\n".join(lines)


def heldout_short(page):
    """The README's held-out table: each scored run's valid and held-out perplexity, best checkpoint; the studies
    trained with their recipe's own graph and gradient (the others are in the results page's table)."""
    runs = [run for run in heldout_runs()[0] if run.recipes_own_maths]
    lines = ["| run | recipe | seeds | perplexity per | valid (the book's validation text) | held-out (stories 101–209) |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run.name(page)} | `{run.recipe}` | {len(run.valid)} | {unit(run.recipe)} | "
                     f"{median_range(run.valid)} | {median_range(run.best)} |")
    main_job = [SAMPLE / "environment.json"] if any(run.is_main_job for run in runs) else []
    machines = study_machines(page, *[run.folder for run in runs if not run.is_main_job], environments=main_job)
    lines += ["", f"Best checkpoints; median (min – max) over seeds. Made on: {machines}."]
    return "\n".join(lines)


def seed_environments(folder):
    """The environment.json of every seed of a study folder, by seed."""
    return sorted(folder.glob("seed-*/environment.json"), key=lambda p: int(p.parent.name[5:]))


def study_machines(page, *folders, environments=()):
    """The machines of studies' seeds (and of the runs `environments`), each named once."""
    lines = [made_on(page, [*environments, *(env for folder in folders for env in seed_environments(folder))])]
    for folder in folders:                  # a study kept without its seed folders: its report's own line
        if not seed_environments(folder):
            recorded = read_json(folder / "report.json")["environments"]
            lines += [f"{'; '.join(dict.fromkeys(recorded))} ({link(page, folder / 'report.json')}, "
                      "`environments`)"]
    return "; ".join(line for line in lines if line)


def band(page, name):
    """The README's answer for a study: five figures the book printed, the seeds' range, the verdict."""
    folder = DOCS / name
    report = read_json(folder / "report.json")
    lines = ["| figure | the book printed | seeds: min – max | verdict |", "|---|---|---|---|"]
    for figure in BAND_FIGURES:
        entry = report["ranks"][figure]
        placed = ("inside" if entry["inside"] else "**outside**") + f", rank {entry['rank']} of {entry['of']}"
        lines.append(f"| {figure} | {fmt(entry['book'])} | {fmt(entry['seeds'][0])} – {fmt(entry['seeds'][-1])} "
                     f"| {placed} |")
    return "\n".join(lines + ["", verdict(page, name)])


def verdict(page, name):
    """A study's verdict on the book's printed run in one line: what was trained, and where."""
    folder = DOCS / name
    report = read_json(folder / "report.json")
    state = report["options"].get("state_variables")
    steps = (f", the first {report['compared_steps']} of its {report['printed_steps']} printed steps"
             if report["compared_steps"] < report["printed_steps"] else "")
    return (f"**Verdict (computed by `study`): {report['verdict']}** ({len(report['finished_seeds'])} seeds of "
            f"`{report['recipe']}`, the {report['book_run']}'s documents{steps}"
            + (f", {state} state variables" if state else "")
            + f"). Made on: {study_machines(page, folder)}.")


def study(page, name):
    """A study's every printed figure among its seeds, and the steps its curves leave the seeds' range."""
    folder = DOCS / name
    report = read_json(folder / "report.json")
    lines = ["| figure | the book | seeds: min – median – max | rank of the book (low first) |",
             "|---|---|---|---|"]
    for figure, entry in report["ranks"].items():
        seeds = entry["seeds"]
        median = statistics.median(seeds)
        median = int(median) if isinstance(entry["book"], int) and float(median).is_integer() else median
        where = "" if entry["inside"] else " (**outside**)"
        lines.append(f"| {figure} | {fmt(entry['book'])} | {fmt(seeds[0])} – {fmt(median)} – {fmt(seeds[-1])} "
                     f"| {entry['rank']} of {entry['of']}{where} |")
    outside = []
    for curve, entry in report.get("steps_outside", {}).items():      # reports of older studies lack it
        steps = ", ".join(map(str, entry["steps"])) or "none"
        outside.append(f"its {curve} curve at {len(entry['steps'])} of {entry['of']} ({steps})")
    if outside:
        outside = (f" The book's run leaves the seeds' range: {'; '.join(outside)}; "
                   f"{report['steps_outside']['valid']['expected']:.1f} steps each would be expected were it one "
                   "more seed.")
    heldout = report.get("heldout") or {"seeds": []}
    if heldout["seeds"]:
        bands, rho = heldout["bands"], heldout["spearman"]
        scored = (f" On the stories the book never read (101–209), over {len(heldout['seeds'])} seeds: best checkpoints "
                  f"{median_range(bands['best'])}, last checkpoints {median_range(bands['last'])}"
                  + ("" if rho is None else f"; Spearman's ρ between the seeds' valid and held-out perplexity {rho:+.2f}")
                  + ".")
    else:
        scored = " Its seeds have no held-out figures."
    lines += ["", f"**Verdict: {report['verdict']}** ({len(report['finished_seeds'])} seeds).{outside or ''}{scored} "
              f"Made on: {study_machines(page, folder)}. The report: {link(page, folder / 'report.md')}."]
    return "\n".join(lines)


def outside(page, name):
    """The steps where the book's printed curves leave a study's seeds' range: the book's figure beside the
    seeds' min – median – max, and how far it lies from their median."""
    report = read_json(DOCS / name / "report.json")
    read_printed, run = PRINTED[report["book_run"]]
    printed = {row["step"]: row for row in read_printed(run)}
    bands = {row["step"]: row for row in report["per_step"]}
    lines = ["| step | curve | the book | seeds: min – median – max | the book against the seeds' median |",
             "|---|---|---|---|---|"]
    for step, curve in sorted((step, curve) for curve, entry in report["steps_outside"].items()
                              for step in entry["steps"]):
        book, band = printed[step][f"{curve}_perplexity"], bands[step][curve]
        lines.append(f"| {step} | {curve} | {book:.2f} | {band['min']:.2f} – {band['median']:.2f} – {band['max']:.2f} "
                     f"| {100 * (book / band['median'] - 1):+.1f} % |")
    return "\n".join(lines)


def same_seeds(page, names):
    """Studies that trained the same seeds on the same documents with one thing changed (the machine, the
    gradient, the graph): each seed's best valid perplexity in each (and its held-out perplexity where the
    study scored it), and how far each study's curves lie from the first's, step by step. A name may be a
    study (docs/study-*) or a machine record (docs/machines/*: seed curves without a report, described by
    that folder's README)."""
    folders = [DOCS / name for name in names.split(",")]
    curves = [{int(p.parent.name[5:]): read_csv(p) for p in folder.glob("seed-*/metrics.csv")} for folder in folders]
    heldout = [read_json(f / "report.json").get("heldout", {}).get("by_seed", {}) if (f / "report.json").exists()
               else {} for f in folders]
    seeds = [seed for seed in sorted(set().union(*curves)) if sum(seed in c for c in curves) > 1]
    described = [f / "report.md" if (f / "report.md").exists() else f.parent / "README.md" for f in folders]
    figure = "best valid (held-out)" if any(heldout) else "best valid"
    lines = ["| seed | " + " | ".join(f"{link(page, about, f.name)}: {figure}" for f, about in zip(folders, described))
             + "".join(f" | {f.name}: largest step-by-step difference from the first (train, valid)" for f in folders[1:])
             + " |", "|---" * (2 * len(folders)) + "|"]
    for seed in seeds:
        cells = []
        for c, scored in zip(curves, heldout):
            if seed not in c:
                cells.append("–")
                continue
            cells.append(f"{min(float(row['valid_perplexity']) for row in c[seed]):.4f}")
            if str(seed) in scored:
                cells[-1] += f" ({scored[str(seed)]['best_perplexity']:.2f})"
        for other in curves[1:]:
            if seed not in other or seed not in curves[0]:
                cells.append("–")
                continue
            worst = [max(abs(float(b[key]) / float(a[key]) - 1) for a, b in zip(curves[0][seed], other[seed]))
                     for key in ("train_perplexity", "valid_perplexity")]
            cells.append(", ".join("identical" if w == 0 else f"{w:.1e}" if w < 1e-3 else f"{100 * w:.0f} %"
                                   for w in worst))
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines += ["", f"Made on: {study_machines(page, *folders)}."]
    return "\n".join(lines)


# The book-words studies compared by the word-vectors table: its label of their vectors -> the study folder
WORD_VECTOR_STUDIES = {"the book's `embeddings.npy`": "study-book-words",
                       "ours: CBOW learnt first (`--embeddings cbow`)": "study-book-words-embeddings-cbow"}


def vector_perplexities(page):
    """The book-words LSTM's perplexity starting from each study's vectors: after step 1, the best valid and the
    held-out perplexity over the study's seeds (the book's own step 1 trained on one document order, placed by
    its own study)."""
    lines = ["| word vectors | seeds | step 1: train perplexity | step 1: valid perplexity | best valid perplexity | "
             "held-out, best checkpoint |", "|---|---|---|---|---|---|"]
    for label, name in WORD_VECTOR_STUDIES.items():
        report = read_json(DOCS / name / "report.json")
        by_seed = [report["figures_by_seed"][str(seed)] for seed in report["finished_seeds"]]
        heldout = (report.get("heldout") or {}).get("bands", {}).get("best")
        lines.append(f"| {link(page, DOCS / name / 'report.md', label)} | {len(by_seed)} | "
                     + " | ".join(median_range([figures[figure] for figures in by_seed])
                                  for figure in ("train perplexity at step 1", "first valid perplexity",
                                                 "best valid perplexity"))
                     + f" | {median_range(heldout) if heldout else '–'} |")
    return lines


@dataclasses.dataclass
class ProbeNeighbours:
    """The nearest neighbours of the book's probe words: per column (the book's CBOW log, then each study's seed 0
    vectors) per word the first as many as the log printed; how many of them the log printed too, of `total`."""
    columns: dict
    shared: dict
    total: int
    searched_words: int
    searched_among: str

    @classmethod
    def read(cls):
        step, printed = book_record.printed_cbow_neighbours()
        described = {label: read_json(DOCS / name / "seed-0" / "embeddings.json")
                     for label, name in WORD_VECTOR_STUDIES.items()}
        columns = {f"the book's CBOW log (step {step})": printed}
        columns.update({label + (", seed 0" if about["source"] == "cbow" else ""): about["probe_neighbours"]
                        for label, about in described.items()})
        shown = {label: {word: neighbours.get(word, [])[:len(in_log)] for word, in_log in printed.items()}
                 for label, neighbours in columns.items()}
        shared = {label: sum(len(set(shown[label][word]) & set(in_log)) for word, in_log in printed.items())
                  for label in list(columns)[1:]}
        # Only the probe words the files' searches hold count: a word whose count another shares is left out.
        searched = set.intersection(*(set(about["probe_neighbours"]) for about in described.values()))
        return cls(shown, shared, sum(len(in_log) for word, in_log in printed.items() if word in searched),
                   len(searched), next(iter(described.values()))["probe_neighbours_among"])

    def shared_text(self):
        return "; ".join(f"{label}: {count} of {self.total}" for label, count in self.shared.items())


def word_vectors(page):
    """The book's word vectors against ours: vector_perplexities, then the nearest neighbours of the book's probe
    words in the book's CBOW log, in its `embeddings.npy` and in ours."""
    probes = ProbeNeighbours.read()
    log_label, printed = next(iter(probes.columns.items()))
    lines = vector_perplexities(page)
    lines += ["", "| probe word | " + " | ".join(probes.columns) + " |", "|---" * (len(probes.columns) + 1) + "|"]
    for word, in_log in printed.items():
        cells = [", ".join(f"**{w}**" if w in in_log and label != log_label else w for w in shown[word]) or "–"
                 for label, shown in probes.columns.items()]
        lines.append(f"| {word} | " + " | ".join(cells) + " |")
    lines += ["", "Nearest neighbours by cosine, the first 4 (the log printed 4); in bold those the log printed too: "
              f"{probes.shared_text()}. The files' neighbours are searched among {probes.searched_among} (the book's "
              "file follows its own dictionary, whose order among words of equal count is not ours; –: a probe word "
              "whose count another word shares); the log's among every word. Made on: "
              f"{study_machines(page, *(DOCS / name for name in WORD_VECTOR_STUDIES.values()))}."]
    return "\n".join(lines)


def word_vectors_short(page):
    """The README's form of word_vectors: the perplexities, and how many of the probe words' neighbours in the
    book's CBOW log each study's vectors give."""
    probes = ProbeNeighbours.read()
    lines = vector_perplexities(page)
    lines += ["", "Median (min – max) over seeds. Of the nearest neighbours the book's CBOW log printed for its "
              f"probe words (the first 4 of each of the {probes.searched_words} whose count no other word shares), "
              f"each set of vectors gives: {probes.shared_text()}. Made on: "
              f"{study_machines(page, *(DOCS / name for name in WORD_VECTOR_STUDIES.values()))}."]
    return "\n".join(lines)


def extensions(page):
    """The three cells on bands (study --compare), with the book's two printed runs; held-out perplexity and the
    per-story count where the studies' seeds were scored."""
    comparison = read_json(DOCS / "extensions-bands" / "comparison.json")
    lines = ["| model | seeds | best valid: median (min – max) | its step | last valid | held-out (stories 101–209), "
             "best checkpoint | story measures inside the book's stories' range (every seed) |",
             "|---|---|---|---|---|---|---|"]
    for s in comparison["studies"]:
        b = s["bands"]
        heldout = b.get(HELDOUT_FIGURES["best"])
        inside = sum(s["story_measures_inside"].values())
        lines.append(f"| `{s['recipe']}` ({s['cell']}; {link(page, ROOT / s['folder'] / 'report.md', 'report')}) "
                     f"| {len(s['seeds'])} | {median_range(b['best valid perplexity'])} | "
                     f"{median_range(b['step of the best valid perplexity'], 0)} | "
                     f"{median_range(b['last valid perplexity'])} | {median_range(heldout) if heldout else '–'} | "
                     f"{inside} of {len(s['story_measures_inside'])} (the {s['book_run']}'s) |")
    for run, figures in comparison["book"].items():
        lines.append(f"| {run}, printed | 1 | {figures['best valid perplexity']:.2f} | "
                     f"{figures['step of the best valid perplexity']} | {figures['last valid perplexity']:.2f} | | |")
    lines.append("")
    for pair in comparison["pairs"]:
        lines += [f"- {pair['best']}"] + [f"- {pair[key]['line']}" for key in ("heldout", "stories") if key in pair]
    lines += [""] + cells_ranked(comparison)
    folders = [ROOT / s["folder"] for s in comparison["studies"]]
    lines += ["", f"Made on: {study_machines(page, *folders)}."]
    return "\n".join(lines)


def cells_ranked(comparison):
    """Which cell is best: the cells by median on valid and on held-out perplexity, each pair apart or
    overlapping (as `study --compare` found); then the first valid and a mid-run train perplexity per cell."""
    cell = {s["name"]: s["cell"] for s in comparison["studies"]}
    lines = []
    for label, figure, verdict in (("best valid perplexity (500 bigrams)", "best valid perplexity", lambda p: p["apart"]),
                                   ("held-out perplexity (stories 101–209, best checkpoint)", HELDOUT_FIGURES["best"],
                                    lambda p: p.get("heldout", {}).get("apart"))):
        scored = sorted((s["bands"][figure]["median"], s["cell"]) for s in comparison["studies"] if s["bands"].get(figure))
        if len(scored) < 2:
            lines.append(f"- **{label}**: fewer than two cells have figures.")
            continue
        order = " < ".join(f"{name} {median:.2f}" for median, name in scored)
        pairs = [(cell[p["studies"][0]], cell[p["studies"][1]], verdict(p)) for p in comparison["pairs"]]
        apart = [f"{a}/{b}" for a, b, v in pairs if v]
        overlap = [f"{a}/{b}" for a, b, v in pairs if v is False]
        lines.append(f"- **{label}**, medians: {order}; apart: {', '.join(apart) or 'none'}; "
                     f"overlapping: {', '.join(overlap) or 'none'}.")
    for figure in ("first valid perplexity", "train perplexity at step 13"):
        bands = []
        for s in comparison["studies"]:
            entry = read_json(ROOT / s["folder"] / "report.json")["ranks"].get(figure)
            if entry:
                bands.append(f"{s['cell']} {median_range(entry['seeds'])}")
        lines.append(f"- {figure}: {', '.join(bands)}.")
    return lines


def classics_cells(page):
    """char-rnn / char-lstm / char-gru over the same batches: validation loss by epoch, time."""
    rows = read_csv(DOCS / "classics-cells.csv")
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    lines = ["| cell | validation loss after 3 epochs | best validation loss (epoch) | last epoch | train loss, "
             "last epoch | training time, one thread |", "|---|---|---|---|---|---|"]
    for cell in cells:
        own = [r for r in rows if r["cell"] == cell]
        per_epoch = int(own[0]["step"])
        valid = [float(r["valid_loss"]) for r in own]
        best = min(range(len(valid)), key=valid.__getitem__)
        lines.append(f"| {cell.upper()} | {valid[2]:.3f} | {valid[best]:.3f} ({best + 1}) | {valid[-1]:.3f} "
                     f"({len(own)}: {int(own[-1]['step']) // per_epoch * per_epoch:,} batches) | "
                     f"{float(own[-1]['train_loss']):.3f} | {float(own[-1]['seconds']) / 60:.1f} min |")
    return "\n".join(lines)


def classics_probe(page):
    """The context probe: validation loss with only the last k characters of each window its own."""
    rows = read_csv(DOCS / "classics-context-probe.csv")
    contexts = list(dict.fromkeys(r["context"] for r in rows))
    lines = ["| cell | k = " + " | ".join(contexts) + " |", "|---|" + "---|" * len(contexts)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        losses = {r["context"]: float(r["valid_loss"]) for r in rows if r["cell"] == cell}
        low = min(losses.values())
        lines.append(f"| {cell.upper()} | " + " | ".join(f"**{v:.3f}**" if v == low else f"{v:.3f}"
                                                       for v in losses.values()) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- the classics' runs (docs/classics/)
ACCURACY_TARGET = 88.0          # aesop-word: the article's model has learnt the fable (`Average Accuracy`, %)
STORY_TARGET = 28               # ... and tells it back: words as in the fable of the 32 after "had a general"
CAT_FORK = "the cat ."          # the fork of the fable a story from "had a general" meets first


@dataclasses.dataclass
class ClassicRun:
    """The light copy of a classic's run, docs/classics/NAME: config.json, environment.json, metrics.csv,
    samples.txt and, for the Aesop recipes, story.json (what `generate --report` measured of its story)."""
    folder: Path
    config: dict
    rows: list
    story: dict

    @classmethod
    def read(cls, folder):
        story = folder / "story.json"
        return cls(folder, read_json(folder / "config.json"), read_csv(folder / "metrics.csv"),
                   read_json(story) if story.exists() else None)

    @property
    def seed(self):
        return self.config["seed"]

    @property
    def last(self):
        """The last row of metrics.csv: the final weights' figures."""
        return self.rows[-1]

    def figure(self, column):
        return float(self.last[column])

    def minutes(self):
        return self.figure("seconds") / 60

    def threads(self):
        return read_json(self.folder / "environment.json")[0]["threads"]["intra_op"]

    def fork(self, context, row=None):
        """{word: probability} of the text's continuations of `context` in the forks column of `row` (default:
        the last), in the text's order."""
        probabilities = {}
        for label, p in fable.fork_series((row or self.last)["forks"]):
            at, way = label.split(" -> ")
            if at == context:
                probabilities[way.split(" (")[0]] = p
        return probabilities

    def met(self, context):
        """The story's fork at `context` (story.json), None when the story did not reach it."""
        return next((fork for fork in self.story["forks"] if fork["context"] == context), None)

    def read_last(self, context):
        """(the continuation of `context` whose window the training walk read last, {continuation: iterations
        before the end})."""
        before = self.story["walk"][context]["iterations_before_the_end"]
        return min(before, key=before.get), before

    def leads(self, context):
        """(progress lines at which the model's leading continuation of `context` was the one whose window the
        walk had read last, progress lines at which either had been read)."""
        pairs = [(self.fork(context, row), read) for row, read in
                 zip(self.rows, self.story["walk"][context]["read_last"]) if read is not None]
        return sum(max(p, key=p.get) == read for p, read in pairs), len(pairs)


def classic_runs(prefix):
    """The runs docs/classics/<prefix>-seed-N, by seed."""
    folders = [f for f in CLASSICS.glob(f"{prefix}-seed-*") if f.name[len(prefix) + 6:].isdigit()]
    return [ClassicRun.read(f) for f in sorted(folders, key=lambda f: int(f.name[len(prefix) + 6:]))]


def classic_run(name):
    """The run docs/classics/NAME, None when it is not kept."""
    return ClassicRun.read(CLASSICS / name) if (CLASSICS / name / "config.json").exists() else None


def seed_list(seeds):
    """'seed 3', 'seeds 0–7' (consecutive) or 'seeds 0, 2, 5'."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def of(count, total):
    """'3 of 8', 'all 8', 'none of the 8'."""
    return f"all {total}" if count == total else f"{count} of {total}" if count else f"none of the {total}"


def runs_count(runs):
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''}"


def departure(story):
    found = story["first_departure"]
    return f'word {found["word"]}: "{found["story"]}" for "{found["text"]}"' if found else "none"


def threads(runs):
    """'one thread' (or '2 threads'): the intra-op threads of the runs' first sessions."""
    return " or ".join("one thread" if n == 1 else f"{n} threads" for n in sorted({run.threads() for run in runs}))


def minutes_range(runs):
    minutes = [run.minutes() for run in runs]
    return f"{minutes[0]:.1f} min" if len(runs) == 1 else f"{min(minutes):.1f}–{max(minutes):.1f} min a run"


def fable_words():
    return fable.read_words(FABLE.read_text(encoding="utf-8"))


def article_story():
    """The article's listing 11, measured as `generate` measures our stories (fable.story_measures)."""
    printed = book_record.aesop_printed()["story"]
    return fable.story_measures(fable_words(), printed[:3], printed[3:])


def leads_sentence(runs):
    """How often the model led with the continuation whose window the walk had read last, summed over `runs`."""
    forks = []
    for context in runs[0].story["walk"]:
        led, seen = (sum(counts) for counts in zip(*(run.leads(context) for run in runs)))
        forks.append(f'at {led} of {seen} for "{context}" ({100 * led / seen:.0f} %)')
    return (f"At the progress lines at which the walk had read either window of a fork, the model's leading "
            f"continuation was the one read last {' and '.join(forks)} (`forks` in `metrics.csv` against `walk` in "
            "`story.json`).")


def aesop_word_row(run, ways):
    story, p = run.story, run.fork(CAT_FORK)
    length = story["length"]
    odds = " / ".join(f"**{p[w]:.3f}**" if run.met(CAT_FORK) and p[w] == max(p.values()) else f"{p[w]:.3f}"
                      for w in ways)
    last, before = run.read_last(CAT_FORK)
    shown = f'**"{last}"**' if last == ways[0] else f'"{last}"'
    others = "; ".join(f'"{w}" {n}' for w, n in before.items() if w != last)
    return (f"| {run.seed} | {run.figure('average_accuracy'):.2f} % | {run.figure('text_accuracy'):.2f} % | "
            f"{story['words_as_in_text']} / {length} | {story['follow_their_context']} / {length} | {departure(story)} "
            f"| {'' if run.met(CAT_FORK) else '(not reached) '}{odds} | {shown} ({before[last]}; {others}) | "
            f"{run.minutes():.1f} min |")


def aesop_word_seeds(page):
    """aesop-word over seeds: each run's accuracy, its story from "had a general" (story.json), its odds at "the
    cat ." and which of the two windows its walk read last; then what they add up to."""
    runs, printed = classic_runs("aesop-word"), article_story()
    first = runs[0]
    length = first.story["length"]
    ways = list(first.fork(CAT_FORK))                   # the fable's continuations, the story's first
    lines = [f"| seed | `Average Accuracy` at {first.config['num_steps']:,} | fable windows right, final weights | "
             f"words as in the fable | follow their {first.story['context_words']} words as in the fable | first "
             f'departure | after "{CAT_FORK}": ' + " / ".join(f"p({way})" for way in ways)
             + " | read last (iterations before the end) | training time |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [aesop_word_row(run, ways) for run in runs]
    lines.append(f"| the article | {book_record.aesop_printed()['accuracy']:.2f} % | | "
                 f"{printed['words_as_in_text']} / {length} | {printed['follow_their_context']} / {length} | "
                 f"{departure(printed)} | \"{printed['forks'][0]['took']}\" | (see below) | |")
    return "\n".join(lines + ["", aesop_word_targets(runs), "", aesop_word_forks(runs, printed, ways)])


def aesop_word_targets(runs):
    accuracy = [run.figure("average_accuracy") for run in runs]
    text_accuracy = [run.figure("text_accuracy") for run in runs]
    told = [run for run in runs if run.story["words_as_in_text"] >= STORY_TARGET]
    length = runs[0].story["length"]
    told_text = " (" + "; ".join(f"seed {run.seed}: {run.story['words_as_in_text']}" for run in told) + ")" \
        if told else ""
    windows = len(fable_words()) - runs[0].config["num_unrollings"]
    return (f"The accuracy target (≥ {ACCURACY_TARGET:.0f} %) is met by "
            f"{of(sum(a >= ACCURACY_TARGET for a in accuracy), len(runs))} seeds (mean {statistics.mean(accuracy):.2f} %, "
            f"{min(accuracy):.2f}–{max(accuracy):.2f} %); the story target (≥ {STORY_TARGET} of {length}) by "
            f"{of(len(told), len(runs))}{told_text}. The final weights predict {min(text_accuracy):.2f}–"
            f"{max(text_accuracy):.2f} % of the fable's {windows} windows.")


def aesop_word_forks(runs, printed, ways):
    """Which stories reach "the cat ." along the fable and how they go on; which window the walks read last."""
    fork_word = printed["forks"][0]["word"]
    reached = [run for run in runs                     # the fable's words up to the fork: then at it
               if not run.story["first_departure"] or run.story["first_departure"]["word"] >= fork_word]
    went = [(way, [run.seed for run in reached if run.met(CAT_FORK)["took"] == way]) for way in ways]
    read_last = [(way, [run.seed for run in runs if run.read_last(CAT_FORK)[0] == way]) for way in ways]
    return (f"{of(len(runs) - len(reached), len(runs)).capitalize()} stories leave the fable before \"{CAT_FORK}\" "
            f"(word {fork_word}); of the {len(reached)} that reach it along the fable, the next word is "
            + " and ".join(f'"{way}" in {how_many(seeds, len(reached), always_name=True)}' for way, seeds in went)
            + f". Of the {len(runs)} walks, the window of \"{CAT_FORK}\" read last is the one followed by "
            + " and by ".join(f'"{way}" in {how_many(seeds, len(runs))}' for way, seeds in read_last)
            + f". {leads_sentence(runs)}")


def how_many(seeds, total, always_name=False):
    """'none', 'all 7' or '2 (seeds 3, 5)': how many of `total` runs `seeds` are, and which."""
    if not seeds:
        return "none"
    named = f" ({seed_list(seeds)})" if always_name or len(seeds) < total else ""
    return (f"all {total}" if len(seeds) == total else str(len(seeds))) + named


def aesop_word_layers(page):
    """The article's 2-layer variant (--layers 2): the same figures as a seed of aesop-word, in a paragraph."""
    run = classic_run("aesop-word-layers-2-seed-0")
    if run is None:
        return "(No run of `aesop-word --layers 2` is kept in docs/classics/.)"
    story, length = run.story, run.story["length"]
    led = " and ".join(f'{led} of {seen} for "{context}"' for context, (led, seen) in
                       ((context, run.leads(context)) for context in story["walk"]))
    found = story["first_departure"]
    leaves = f', leaving it at word {found["word"]} ("{found["story"]}" for "{found["text"]}")' if found else ""
    return (f"`--layers {run.config['layers']}`, seed {run.seed}, {threads([run])}, {run.minutes():.1f} min: "
            f"`Average Accuracy= {run.figure('average_accuracy'):.2f}%` at {run.config['num_steps']:,}, "
            f"{run.figure('text_accuracy'):.2f} % of the fable's windows right with the final weights; from "
            f'"{story["prime"]}", {story["words_as_in_text"]} of {length} words as in the fable{leaves}, '
            f"{story['follow_their_context']} of {length} following their own context. At the progress lines at "
            f"which the walk had read either window of a fork, the continuation read last led at {led}. Its story: "
            f"\"{story['prime']} {' '.join(story['story'])}\".")


def aesop_context_seeds(page):
    """aesop-context over seeds: training accuracy, the fable's words predicted from the words before them, the
    story from "had a general" and the model's probability of the fable's word at both "the cat ." (metrics.csv)."""
    runs = classic_runs("aesop-context")
    first = runs[0]
    length = first.story["length"]
    labels = [label for label, _ in fable.fork_series(first.last["forks"]) if label.startswith(CAT_FORK + " -> ")]
    lines = [f"| seed | training accuracy, last {first.config['display_step']} iterations | fable words right, final "
             f"weights | words as in the fable | follow their {first.story['context_words']} words as in the fable | "
             "first departure | the fable's word at each \"" + CAT_FORK + "\": "
             + " / ".join(f"p({label.split(' -> ')[1]})" for label in labels) + " | training time |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        story, p = run.story, run.fork(CAT_FORK)
        told = story["words_as_in_text"]
        lines.append(f"| {run.seed} | {run.figure('average_accuracy'):.2f} % | {run.figure('text_accuracy'):.2f} % | "
                     + (f"**{told} / {length}**" if told >= STORY_TARGET else f"{told} / {length}")
                     + f" | {story['follow_their_context']} / {length} | {departure(story)} | "
                     + " / ".join(f"{v:.3f}" for v in p.values()) + f" | {run.minutes():.1f} min |")
    told = [run for run in runs if run.story["words_as_in_text"] >= STORY_TARGET]
    accuracy = [run.figure("average_accuracy") for run in runs]
    text_accuracy = [run.figure("text_accuracy") for run in runs]
    odds = [p for run in runs for p in run.fork(CAT_FORK).values()]
    lines += ["", f"The story target (≥ {STORY_TARGET} of {length}) is met by {of(len(told), len(runs))} seeds; "
              f"the final weights predict {min(text_accuracy):.2f}–{max(text_accuracy):.2f} % of the fable's "
              f"{len(fable_words()) - 1} words from the words before them (training accuracy "
              f"{min(accuracy):.2f}–{max(accuracy):.2f} %), and give the fable's word at both \"{CAT_FORK}\" a "
              f"probability of at least {min(odds):.3f}."]
    return "\n".join(lines)


def classics_summary(page):
    """Each classic's runs in docs/classics/ (and the character cells' CSV) beside what its article printed."""
    article = book_record.aesop_printed()
    printed = article_story()
    lines = ["| recipe | run | printed | the article |", "|---|---|---|---|"]
    kept = []
    shakespeare = classic_run("shakespeare-char-seed-0")
    if shakespeare:
        kept.append(shakespeare)
        last = shakespeare.last
        lines.append(f"| `shakespeare-char` | the article's configuration, 1 epoch = {int(last['step']):,} steps, "
                     f"{threads([shakespeare])}, {shakespeare.minutes():.1f} min | `{float(last['epoch']):.3f} "
                     f"perplexity: {float(last['perplexity']):.3f} speed: {float(last['chars_per_second']):.0f} wps` "
                     "| code only, no figures |")
    else:
        lines.append("| `shakespeare-char` | the article's configuration, 1 epoch | (no run kept in docs/classics/) "
                     "| code only, no figures |")
    cells = read_csv(DOCS / "classics-cells.csv")
    epochs = sum(r["cell"] == cells[0]["cell"] for r in cells)
    lines.append(f"| `char-rnn` / `char-gru` / `char-lstm` | {epochs} epochs ({int(cells[epochs - 1]['step']):,} "
                 "batches), one thread, otherwise the article's | [below](#char-rnn--char-lstm--char-gru-do-the-gated-"
                 "cells-learn-longer-structure) | no figures; says the gated cells learn longer structure than the "
                 "plain RNN |")
    runs = classic_runs("aesop-word")
    kept += runs
    accuracy = [run.figure("average_accuracy") for run in runs]
    length = runs[0].story["length"]
    lines.append(f"| `aesop-word` (1 layer) | the article's configuration, {runs[0].config['num_steps']:,} iterations, "
                 f"{runs_count(runs)} ({seed_list(run.seed for run in runs)}), {threads(runs)}, {minutes_range(runs)} | "
                 f"`Average Accuracy=` at {runs[0].config['num_steps']:,}: mean {statistics.mean(accuracy):.2f} %, "
                 f"{min(accuracy):.2f}–{max(accuracy):.2f} % (≥ {ACCURACY_TARGET:.0f} % in "
                 f"{of(sum(a >= ACCURACY_TARGET for a in accuracy), len(runs))}); from \"{runs[0].story['prime']}\", "
                 f"words as in the fable (of {length}), by seed: "
                 + ", ".join(str(run.story["words_as_in_text"]) for run in runs)
                 + f" | `{article['line']}`; {printed['words_as_in_text']} of {len(printed['story'])} |")
    layers = classic_run("aesop-word-layers-2-seed-0")
    if layers:
        kept.append(layers)
        lines.append(f"| `aesop-word --layers {layers.config['layers']}` | the same with the article's "
                     f"{layers.config['layers']}-layer cell, 1 run (seed {layers.seed}), {threads([layers])}, "
                     f"{layers.minutes():.1f} min | `Average Accuracy= {layers.figure('average_accuracy'):.2f}%` at "
                     f"{layers.config['num_steps']:,}; from \"{layers.story['prime']}\": "
                     f"{layers.story['words_as_in_text']} of {layers.story['length']} words as in the fable | "
                     "says more layers improve the accuracy; no figures, no story |")
    context = classic_runs("aesop-context")
    kept += context
    accuracy = [run.figure("average_accuracy") for run in context]
    told = [run.story["words_as_in_text"] for run in context]
    lines.append(f"| `aesop-context` (ours) | one-hot words, up to {context[0].config['num_unrollings']} of them as "
                 f"context, {context[0].config['num_steps']:,} iterations, {runs_count(context)} "
                 f"({seed_list(run.seed for run in context)}), {threads(context)}, {minutes_range(context)} | training "
                 f"accuracy {min(accuracy):.2f}–{max(accuracy):.2f} %; from \"{context[0].story['prime']}\", words as in "
                 f"the fable (of {context[0].story['length']}), by seed: {', '.join(map(str, told))} | (not in the "
                 "article) |")
    lines += ["", f"Made on: {made_on(page, [run.folder / 'environment.json' for run in kept])}."]
    return "\n".join(lines)


def times(page):
    """Recorded times: the seconds column of the main job's and of every study seed's metrics.csv."""
    lines = ["| run | recipe | steps | a step: median (min – max) | a run, in all | made on |",
             "|---|---|---|---|---|---|"]
    seconds = step_seconds(SAMPLE / "metrics.csv")
    report = read_json(SAMPLE / "report.json")
    lines.append(f"| {link(page, SAMPLE / 'report.md', 'the main job')} | `{report['recipe']}` | {len(seconds)} | "
                 f"{median_range(seconds, 0, ' s')} | "
                 f"{minutes(sum(seconds))} | {link(page, SAMPLE / 'environment.json', 'environment.json')} |")
    for folder in sorted(DOCS.glob("study-*")):
        seeds = sorted(folder.glob("seed-*/metrics.csv"))
        if not seeds:
            continue
        per_seed = [step_seconds(m) for m in seeds]
        steps = [s for run in per_seed for s in run]
        totals = [sum(run) for run in per_seed]
        recipe = read_json(folder / "report.json")["recipe"]
        first = seeds[0].parent
        lines.append(f"| {link(page, folder / 'report.md', folder.name)} | `{recipe}` | {len(seeds)} seeds × "
                     f"{len(per_seed[0])} | {median_range(steps, 0, ' s')} | "
                     f"{minutes(min(totals))} – {minutes(max(totals))} a seed | "
                     f"{link(page, first / 'environment.json', f'{first.name}/environment.json')} |")
    return "\n".join(lines)


def bench(page):
    """A bench run kept as docs/speed-bench.json (`bench --output docs/speed-bench.json`): the table bench
    printed, written again from its JSON."""
    if not BENCH.exists():
        return ("No bench run is kept in docs/: `python reproduce/main.py bench --output docs/speed-bench.json` "
                "then `python -m reproduce.doc_tables` writes its table here.")
    from reproduce.bench import format_table    # imports TensorFlow: only when there is a run to show
    return (f"`bench` on {read_json(BENCH)['machine']} ({link(page, BENCH)}):\n\n```\n"
            + format_table(read_json(BENCH)).strip("\n") + "\n```")


TABLES = {"main-job": main_job, "heldout": heldout, "heldout-by-recipe": heldout_by_recipe,
          "heldout-short": heldout_short, "extensions": extensions, "classics-cells": classics_cells,
          "classics-probe": classics_probe,
          "classics-summary": classics_summary, "aesop-word-seeds": aesop_word_seeds,
          "aesop-word-layers-2": aesop_word_layers, "aesop-context-seeds": aesop_context_seeds,
          "word-vectors": word_vectors, "word-vectors-short": word_vectors_short, "times": times, "bench": bench}
FOLDER_TABLES = {"band": band, "verdict": verdict, "study": study, "outside": outside,     # name:ARGUMENT tables
                 "same-seeds": same_seeds}


def render(name, page):
    kind, _, argument = name.partition(":")
    if kind in FOLDER_TABLES and argument:
        return FOLDER_TABLES[kind](page, argument)
    if name not in TABLES:
        raise ValueError(f"{page.relative_to(ROOT)}: unknown table {name!r} (known: {', '.join(TABLES)}, "
                         "band:FOLDER, verdict:FOLDER, study:FOLDER, outside:FOLDER, same-seeds:FOLDER,FOLDER...)")
    return TABLES[name](page)


def regenerate(page):
    """(the page with every table written afresh, the names of the tables that differed)."""
    text = page.read_text(encoding="utf-8")
    changed = []

    def replace(match):
        body = render(match["name"], page) + "\n"
        if body != match["body"]:
            changed.append(match["name"])
        return match[1] + body + match[4]

    return MARKER.sub(replace, text), changed


def check():
    """'PAGE: table NAME differs from its report' for every table a page holds out of date."""
    return [f"{page.relative_to(ROOT)}: table {name} differs from its report"
            for page in pages() for name in regenerate(page)[1]]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m reproduce.doc_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each table that differs")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (KeyError, OSError, ValueError) as error:     # an unknown table, a missing or malformed report
        print(f"error: {error}", file=sys.stderr)
        return 1


def run(args):
    if args.check:
        problems = check()
        for line in problems:
            print(f"error: {line}: run python -m reproduce.doc_tables", file=sys.stderr)
        return 1 if problems else 0
    for page in pages():
        text, changed = regenerate(page)
        if changed:
            write_atomic(page, text)
            print(f"{page.relative_to(ROOT)}: {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
