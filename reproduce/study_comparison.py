"""Studies of several recipes side by side, on bands of seeds (the book's LSTM / peephole / GRU comparison; the
word notebooks' two models).

    python reproduce/main.py study --compare STUDY [STUDY ...] --out DIR

Each STUDY is a study folder (or its `--export`), all of bigram recipes or all of word recipes: a perplexity per
word and one per bigram are not comparable, so a mix is refused in one line. Each study is set beside its own
printed run (its report's: the book's LSTM or GRU run for a bigram recipe, the word notebook's run for a word
recipe), each such run once. DIR gets `comparison.md`, `comparison.json` and `comparison.png` (the train and
valid bands of every study with those printed curves): per study
its seeds' best, best step and last valid perplexity and the held-out perplexity of their best checkpoints
on stories 101-209 (median and range), and its story measures; per pair of studies whether their best
valid perplexities, and their held-out perplexities, are apart or overlap, and, seed by seed where they
share seeds, which is lower; and on how many of the held-out stories each is lower (each story's
perplexity a median over the study's seeds). Only finished seeds count.
"""
import itertools
import statistics
from pathlib import Path

from reproduce.book_record import PRINTED_RUNS, PRINTED_WORD_RUNS, printed_curve, printed_word_steps
from reproduce.config import printed_run
from reproduce.errors import UserError
from reproduce.heldout import HELDOUT_TEXT
from reproduce.files import pyplot, save_figure, write_atomic, write_csv, write_json
from reproduce.recipes import WORD_RECIPES
from reproduce.study_report import (HELDOUT_FIGURES, REPORT, band_or_none, check_writable, current_report, disk_errors,
                                    model_of, perplexity_axes, run_figures, seed_medians_inside)

FIGURES = ("best valid perplexity", "step of the best valid perplexity", "last valid perplexity")
HELDOUT = HELDOUT_FIGURES["best"]
STORIES_FIGURE = "heldout_stories.png"
STORIES_CSV = "heldout_stories.csv"
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
# The book's printed runs by the label a study's report names its own with: how to read each one's rows.
PRINTED = {**{label: (printed_curve, run) for run, label in PRINTED_RUNS.items()},
           **{label: (printed_word_steps, run) for run, label in PRINTED_WORD_RUNS.items()}}


def compare_studies(study_dirs, out_dir):
    if len(study_dirs) < 2:
        raise UserError("--compare needs at least two study folders", exit_code=2)
    if out_dir is None:
        raise UserError("--compare needs --out DIR, the folder the comparison goes in", exit_code=2)
    out_dir = Path(out_dir)
    check_writable(out_dir, "--out")
    studies = [read_study(Path(d)) for d in study_dirs]
    names = [s["name"] for s in studies]
    if len(set(names)) < len(names):
        raise UserError(f"--compare: two studies have the same name ({', '.join(names)}); give each one once",
                        exit_code=2)
    check_units(studies)
    printed = printed_runs(studies)
    comparison = {"unit": studies[0]["unit"], "studies": [{k: v for k, v in s.items() if k != "per_step"}
                                                          for s in studies],
                  "book": book_rows(printed), "pairs": [pair(a, b) for a, b in itertools.combinations(studies, 2)]}
    with disk_errors("--out", out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_studies(out_dir / "comparison.png", studies, printed)
        plot_story_medians(out_dir / STORIES_FIGURE, studies)
        stories = sorted({story for s in studies for story in s["story_medians"]}, key=int)
        write_csv(out_dir / STORIES_CSV, ["story", *names],
                  [{"story": story, **{s["name"]: s["story_medians"].get(story, "") for s in studies}}
                   for story in stories])
        write_json(out_dir / "comparison.json", comparison)
        write_atomic(out_dir / "comparison.md", comparison_markdown(comparison))
    for p in comparison["pairs"]:
        print("\n".join((p["best"], p["heldout"]["line"], p["stories"]["line"])))
    print(f"Comparison: {out_dir / 'comparison.md'} (and comparison.json, comparison.png, {STORIES_FIGURE}, "
          f"{STORIES_CSV})")
    return comparison


def read_study(study_dir):
    """A study's finished seeds' figures (by seed), its per-step bands and story measures (its report,
    written again when it is missing or no longer matches the seed folders there now)."""
    if not study_dir.is_dir():
        raise UserError(f"--compare {study_dir}: not a study folder with a finished seed (seed-<k>/); give the "
                        "folder `study` made or exported", exit_code=2)
    with disk_errors("--compare", study_dir):
        report = current_report(study_dir)
    figures = report["figures_by_seed"]                  # finished seeds only
    if not figures:
        raise UserError(f"--compare {study_dir}: none of its seeds {', '.join(map(str, report['seeds']))} has "
                        f"finished its {report['num_steps']} steps yet; compare it once one has", exit_code=2)
    stories = {name: seed_medians_inside(entry) == len(entry["seed_medians"])
               for name, entry in report["story_measures"].items() if entry["book"] and entry["seed_medians"]}
    if report["book_run"] not in PRINTED:
        raise UserError(f"--compare {study_dir}: its {REPORT} names {report['book_run']!r}, none of the book's printed "
                        f"runs ({', '.join(PRINTED)}); delete it: `study --report-only {study_dir}` writes it again",
                        exit_code=2)
    compared = FIGURES + (HELDOUT,)
    by_figure = {name: {seed: f.get(name) for seed, f in figures.items() if f.get(name) is not None}
                 for name in compared}
    return {"name": study_dir.name, "folder": str(study_dir), "recipe": report["recipe"], "cell": report["cell"],
            "model": model_of(report), "unit": unit(report["recipe"]), "documents": documents(report),
            "book_run": report["book_run"], "seeds": report["finished_seeds"], "figures": by_figure,
            "bands": {name: band_or_none(list(by_figure[name].values())) for name in compared},
            "heldout_seeds_without": report["heldout"]["seeds_without"],
            "story_medians": report["heldout"]["per_story_median"],
            "story_measures_inside": stories, "per_step": report["per_step"]}


def unit(recipe):
    """What a perplexity of a study of `recipe` is per: "word" for a word recipe, "bigram" for a book recipe."""
    return "word" if recipe in WORD_RECIPES else "bigram"


def check_units(studies):
    """Studies whose perplexities are per word and per bigram are not compared: a one-line usage error naming
    the first of each."""
    first = studies[0]
    other = next((s for s in studies if s["unit"] != first["unit"]), None)
    if other:
        raise UserError(f"--compare: {first['name']} is a study of {first['recipe']} (perplexity per "
                        f"{first['unit']}), {other['name']} of {other['recipe']} (perplexity per {other['unit']}); "
                        "perplexities per word and per bigram are not comparable: compare word studies with word "
                        "studies, bigram studies with bigram studies", exit_code=2)


def documents(report):
    """What a study's seeds trained on, in words, from its report: random, or the documents of a printed run (the
    same for `book` on a GRU and `book-gru` on any cell; a word recipe's `book`, its own printed run's)."""
    doc_order = report["options"]["doc_order"]
    if report["recipe"] in WORD_RECIPES:
        label = report["book_run"] if doc_order == "book" else None
    else:
        run = printed_run(doc_order, report["cell"])
        label = PRINTED_RUNS[run] if run else None
    return f"the book's {label.removeprefix('book ')} run's" if label else "random"


def printed_runs(studies):
    """{label: per-step rows} of the printed runs the studies are set beside (each study's own), each once, in
    the order of PRINTED."""
    own = {s["book_run"] for s in studies}
    return {label: read(run) for label, (read, run) in PRINTED.items() if label in own}


def book_rows(printed):
    """The figures of the printed runs {label: rows}."""
    rows = {}
    for label, curve in printed.items():
        figures = run_figures(curve)
        rows[label] = {name: figures[name] for name in FIGURES}
    return rows


def pair(a, b):
    """Two studies side by side: on best valid perplexity, on held-out perplexity, and story by story."""
    best = figure_pair(a, b, FIGURES[0])
    return {"studies": [a["name"], b["name"]], "apart": best["apart"], "common_seeds": best["common_seeds"],
            "lower_first": best["lower_first"], "best": best["line"], "heldout": figure_pair(a, b, HELDOUT),
            "stories": story_pair(a, b)}


def story_pair(a, b):
    """On how many held-out stories each of two studies is lower (each story's median over its seeds)."""
    medians_a, medians_b = a["story_medians"], b["story_medians"]
    common = sorted(set(medians_a) & set(medians_b), key=int)
    lower_a = sum(medians_a[story] < medians_b[story] for story in common)
    lower_b = sum(medians_b[story] < medians_a[story] for story in common)
    lacking = " and ".join(s["name"] for s in (a, b) if not s["story_medians"])
    line = (f"{a['name']} vs {b['name']}, held-out perplexity per story (median over seeds): {a['name']} lower on "
            f"{lower_a}, {b['name']} lower on {lower_b} of the {len(common)} stories both have" if common else
            f"{a['name']} vs {b['name']}, held-out perplexity per story: "
            + (f"no figures of {lacking}" if lacking else "no held-out story scored by both"))
    return {"stories": len(common), "lower_first": lower_a, "lower_second": lower_b, "line": line}


def figure_pair(a, b, name):
    """Whether two studies' figure `name` (per seed) are apart or overlap, and seed by seed which is lower."""
    values_a, values_b = a["figures"][name], b["figures"][name]
    if not values_a or not values_b:
        lacking = " and ".join(s["name"] for s, values in ((a, values_a), (b, values_b)) if not values)
        return {"apart": None, "common_seeds": [], "lower_first": None,
                "line": f"{a['name']} vs {b['name']}, {name}: no figures of {lacking}"}
    low_a, high_a = min(values_a.values()), max(values_a.values())
    low_b, high_b = min(values_b.values()), max(values_b.values())
    if high_a < low_b:
        verdict = f"apart: every {a['name']} seed is below every {b['name']} seed"
    elif high_b < low_a:
        verdict = f"apart: every {b['name']} seed is below every {a['name']} seed"
    else:
        verdict = "the ranges overlap"
    common = sorted(set(values_a) & set(values_b), key=int)
    lower_a = sum(values_a[s] < values_b[s] for s in common)
    line = (f"{a['name']} {statistics.median(values_a.values()):.2f} ({low_a:.2f}-{high_a:.2f}) vs {b['name']} "
            f"{statistics.median(values_b.values()):.2f} ({low_b:.2f}-{high_b:.2f}), {name}: {verdict}")
    if common:
        line += f"; {a['name']} lower for {lower_a} of the {len(common)} seeds both have"
    return {"apart": verdict.startswith("apart"), "common_seeds": common, "lower_first": lower_a, "line": line}


def _range(entry, spec=".2f"):
    """`median (min-max)` of a band (spec "g" for a step), `n/a` for none."""
    return f"{entry['median']:{spec}} ({entry['min']:{spec}}-{entry['max']:{spec}})" if entry else "n/a"


def comparison_markdown(comparison):
    lines = ["# Studies compared on bands of seeds", "",
             f"Perplexity per {comparison['unit']}; each study beside its own printed run: "
             + ", ".join(comparison["book"]) + ".", "", "![train and valid bands of the studies](comparison.png)",
             "", "| study | recipe (model) | documents | seeds | best valid: median (min-max) | its step | "
                 "last valid | held-out, best checkpoint | story measures: every seed's median inside the printed "
                 "stories' range |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in comparison["studies"]:
        b = s["bands"]
        inside = s["story_measures_inside"]
        stories = f"{sum(inside.values())} of {len(inside)} (against the {s['book_run']}'s)" if inside else "n/a"
        lines.append(f"| {s['name']} | {s['recipe']} ({s['model']}) | {s['documents']} | "
                     f"{len(s['seeds'])} | {_range(b[FIGURES[0]])} | {_range(b[FIGURES[1]], 'g')} | "
                     f"{_range(b[FIGURES[2]])} | {_range(b[HELDOUT])} | {stories} |")
    for label, figures in comparison["book"].items():
        lines.append(f"| {label} (printed) | | | 1 | {figures[FIGURES[0]]:.2f} | {figures[FIGURES[1]]} | "
                     f"{figures[FIGURES[2]]:.2f} | | |")
    lines += ["", "## Pairs", "",
              f"![held-out perplexity per story, median over each study's seeds]({STORIES_FIGURE})", ""]
    for p in comparison["pairs"]:
        lines += [f"- {p['best']}", f"- {p['heldout']['line']}", f"- {p['stories']['line']}"]
    without = [f"{s['name']} (seeds {', '.join(map(str, s['heldout_seeds_without']))})"
               for s in comparison["studies"] if s["heldout_seeds_without"]]
    if without:
        lines += ["", f"No held-out figures (older summaries, or no story of {HELDOUT_TEXT} in the stories folder): "
                      + "; ".join(without) + "."]
    return "\n".join(lines) + "\n"


def plot_studies(path, studies, printed):
    plt = pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axes, key, book_key in zip(panels, ("train", "valid"), ("train_perplexity", "valid_perplexity")):
        for study, colour in zip(studies, itertools.cycle(COLOURS)):
            steps = [row["step"] for row in study["per_step"]]
            bands = [row[key] for row in study["per_step"]]
            axes.fill_between(steps, [b["min"] for b in bands], [b["max"] for b in bands], color=colour, alpha=0.15)
            axes.plot(steps, [b["median"] for b in bands], color=colour,
                      label=f"{study['name']}: median and range of {len(study['seeds'])} seeds")
        for (label, rows), style, shade in zip(printed.items(), itertools.cycle(("o-", "s--")),
                                               itertools.cycle(("black", "dimgray"))):
            axes.plot([r["step"] for r in rows], [r[book_key] for r in rows], style, color=shade, markersize=3,
                      linewidth=1, label=f"{label} (printed)")
        perplexity_axes(axes, f"{key} perplexity")
    panels[0].set_ylabel("perplexity")
    panels[1].legend(fontsize=7)
    figure.suptitle("studies compared on bands of seeds")
    figure.tight_layout()
    save_figure(figure, path)


def plot_story_medians(path, studies):
    """Each study's held-out perplexity per story (the median over its seeds), story by story."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(12, 4.5))
    for study, colour in zip(studies, itertools.cycle(COLOURS)):
        stories = sorted(study["story_medians"], key=int)
        axes.plot([int(story) for story in stories], [study["story_medians"][story] for story in stories], ".-",
                  color=colour, linewidth=1, label=f"{study['name']}: median of {len(study['seeds'])} seeds"
                  if stories else f"{study['name']}: no held-out figures")
    if not any(study["story_medians"] for study in studies):
        axes.text(0.5, 0.5, "no held-out figures", ha="center", va="center", transform=axes.transAxes)
    axes.set_yscale("log")
    axes.set_xlabel(f"story (file number, {HELDOUT_TEXT})")
    axes.set_ylabel("held-out perplexity (best checkpoint)")
    axes.set_title("held-out perplexity per story: median over each study's seeds")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)
