"""The tables of numbers in README.md and docs/*.md, written from the reports the code wrote.

    python -m reproduce.doc_tables            rewrite every table between its markers
    python -m reproduce.doc_tables --check    exit 1 naming each page and table that differ

A table sits between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of TABLES, or
`study:FOLDER` for a study exported under docs/ (its report.json). The sources: docs/sample-report/
(report.json, metrics.csv, environment.json: the main job), docs/study-*/ (report.json, seed-*/metrics.csv
and environment.json), docs/extensions-bands/comparison.json, docs/classics-cells.csv,
docs/classics-context-probe.csv and, once a bench run is kept there, docs/speed-bench.json. No figure is
held here: replace a report (a new run copied into docs/sample-report/, say), run this, commit the pages.
Reads JSON and CSV only (no TensorFlow), so the check takes a fraction of a second.
"""
import argparse
import csv
import json
import os
import re
import statistics
import sys
from pathlib import Path

from reproduce.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = DOCS / "sample-report"
BOOK_STUDY = "study-book-notebook-doc-order-book"
BENCH = DOCS / "speed-bench.json"
MARKER = re.compile(r"(<!-- table: (?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)
BAND_FIGURES = ("first valid perplexity", "best valid perplexity", "step of the best valid perplexity",
                "last valid perplexity", "learning-rate halvings")


def pages():
    """README.md and every docs/*.md, in a fixed order."""
    return [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


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
    entry = read_json(environment_json)[0]
    flags = entry.get("cpu_flags", [])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    cores = f"{entry['cores']} core{'s' if entry['cores'] != 1 else ''}"
    return (f"{entry['cpu']} ({isa}), {cores}, Python {entry['python']}, TensorFlow "
            f"{entry['tensorflow']}, numpy {entry['numpy']}, commit {entry['git']['commit'][:7]}, "
            f"{entry['recorded'][:10]} ({link(page, environment_json)})")


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


def heldout_by_recipe(page):
    """Held-out perplexity per recipe beside valid: the main job's run, then every study exported under docs/
    whose seeds were scored (median and range over its seeds)."""
    def band(values):
        values = sorted(values)
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.median(values):.2f} ({values[0]:.2f} – {values[-1]:.2f})"

    lines = ["| run | recipe | seeds | valid perplexity, best checkpoint | held-out, best checkpoint | held-out, last "
             "checkpoint | Spearman: valid vs held-out |", "|---|---|---|---|---|---|---|"]
    report = read_json(SAMPLE / "report.json")
    scored = report.get("heldout")
    if scored:
        lines.append(f"| {link(page, SAMPLE / 'report.md', 'the main job')} | `{report['recipe']}` | 1 | "
                     f"{scored['best']['valid_perplexity']:.2f} | {scored['best']['perplexity']:.2f} | | |")
    unscored = []
    for folder in sorted(DOCS.glob("study-*")):
        report = read_json(folder / "report.json")
        section = report.get("heldout") or {"seeds": []}
        if not section["seeds"]:
            unscored.append(link(page, folder / "report.md", folder.name))
            continue
        rows = section["by_seed"].values()
        rho = section["spearman"]
        lines.append(f"| {link(page, folder / 'report.md', folder.name)} | `{report['recipe']}` | "
                     f"{len(section['seeds'])} | {band([r['best_valid_perplexity'] for r in rows])} | "
                     f"{band([r['best_perplexity'] for r in rows])} | {band([r['last_perplexity'] for r in rows])} | "
                     f"{'–' if rho is None else f'{rho:+.2f}'} |")
    if unscored:
        lines += ["", f"Without held-out figures (their seeds' summaries hold none): {', '.join(unscored)}."]
    return "\n".join(lines)


def study_machines(page, *folders):
    """The machines of studies' seeds, each named once through one seed's environment.json."""
    seen = {}
    for env in [env for folder in folders for env in
                sorted(folder.glob("seed-*/environment.json"), key=lambda p: int(p.parent.name[5:]))]:
        entry = read_json(env)[0]
        key = (entry["cpu"], "avx512f" in entry.get("cpu_flags", []), entry["git"]["commit"])
        seen.setdefault(key, env)
    lines = [machine(page, env) for env in seen.values()]
    for folder in folders:                  # a study kept without its seed folders: its report's own line
        if not any(folder.glob("seed-*/environment.json")):
            environments = read_json(folder / "report.json")["environments"]
            lines += [f"{'; '.join(dict.fromkeys(environments))} ({link(page, folder / 'report.json')}, "
                      "`environments`)"]
    return "; ".join(lines)


def book_band(page):
    """The README's answer: five figures the book printed, the seeds' range, the verdict."""
    folder = DOCS / BOOK_STUDY
    report = read_json(folder / "report.json")
    lines = ["| figure | the book printed | seeds: min – max | verdict |", "|---|---|---|---|"]
    for name in BAND_FIGURES:
        entry = report["ranks"][name]
        verdict = ("inside" if entry["inside"] else "**outside**") + f", rank {entry['rank']} of {entry['of']}"
        lines.append(f"| {name} | {fmt(entry['book'])} | {fmt(entry['seeds'][0])} – {fmt(entry['seeds'][-1])} "
                     f"| {verdict} |")
    lines += ["", f"**Verdict (computed by `study`): {report['verdict']}** ({len(report['finished_seeds'])} seeds of "
              f"`{report['recipe']}`, the {report['book_run']}'s documents, {report['options']['state_variables']} "
              f"state variables). Made on: {study_machines(page, folder)}."]
    return "\n".join(lines)


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
    lines += ["", f"**Verdict: {report['verdict']}** ({len(report['finished_seeds'])} seeds).{outside or ''} Made on: "
              f"{study_machines(page, folder)}. The report: {link(page, folder / 'report.md')}."]
    return "\n".join(lines)


def extensions(page):
    """The three cells on bands (study --compare), with the book's two printed runs."""
    comparison = read_json(DOCS / "extensions-bands" / "comparison.json")
    lines = ["| model | seeds | best valid: median (min – max) | its step | last valid | story measures "
             "inside the book's stories' range (every seed) |", "|---|---|---|---|---|---|"]

    def band(entry, digits=2):
        return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f} – {entry['max']:.{digits}f})"

    for s in comparison["studies"]:
        b = s["bands"]
        inside = sum(s["story_measures_inside"].values())
        lines.append(f"| `{s['recipe']}` ({s['cell']}; {link(page, ROOT / s['folder'] / 'report.md', 'report')}) "
                     f"| {len(s['seeds'])} | {band(b['best valid perplexity'])} | "
                     f"{band(b['step of the best valid perplexity'], 0)} | {band(b['last valid perplexity'])} | "
                     f"{inside} of {len(s['story_measures_inside'])} (the {s['book_run']}'s) |")
    for run, figures in comparison["book"].items():
        lines.append(f"| {run}, printed | 1 | {figures['best valid perplexity']:.2f} | "
                     f"{figures['step of the best valid perplexity']} | {figures['last valid perplexity']:.2f} | |")
    lines += [""] + [f"- {pair['best']}" for pair in comparison["pairs"]]
    folders = [ROOT / s["folder"] for s in comparison["studies"]]
    lines += ["", f"Made on: {study_machines(page, *folders)}."]
    return "\n".join(lines)


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


def times(page):
    """Recorded times: the seconds column of the main job's and of every study seed's metrics.csv."""
    lines = ["| run | recipe | steps | a step: median (min – max) | a run, in all | made on |",
             "|---|---|---|---|---|---|"]
    seconds = step_seconds(SAMPLE / "metrics.csv")
    report = read_json(SAMPLE / "report.json")
    lines.append(f"| {link(page, SAMPLE / 'report.md', 'the main job')} | `{report['recipe']}` | {len(seconds)} | "
                 f"{statistics.median(seconds):.0f} s ({min(seconds):.0f} – {max(seconds):.0f}) | "
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
                     f"{len(per_seed[0])} | {statistics.median(steps):.0f} s ({min(steps):.0f} – {max(steps):.0f}) | "
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


TABLES = {"main-job": main_job, "heldout": heldout, "heldout-by-recipe": heldout_by_recipe, "book-band": book_band,
          "extensions": extensions,
          "classics-cells": classics_cells, "classics-probe": classics_probe, "times": times, "bench": bench}


def render(name, page):
    if name.startswith("study:"):
        return study(page, name[len("study:"):])
    if name not in TABLES:
        raise ValueError(f"{page.relative_to(ROOT)}: unknown table {name!r} (known: {', '.join(TABLES)}, study:FOLDER)")
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
