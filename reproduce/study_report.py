"""A study's report: its seed folders and their summaries, the bands, ranks and verdicts against the book's
printed run, report.md/report.json and the figures. `study` writes it; `study --compare` reads it (and
writes it again when it no longer matches the seed folders).

A seed folder `seed-<k>/` is a run folder; a finished one has `summary.json` (its recipe, seed, options and
`comparison` dict: compare_run's for a book recipe, word_comparison's for a word recipe, with the held-out
perplexity of its best and last checkpoint on the stories 101-209 of its stories folder), which is all the
report reads of it. The seeds of one study must agree on recipe, training options and step count: a band of
unlike runs means nothing, so the report refuses the odd one. The book's figures are set beside the seeds'
over the steps both have (a study of fewer steps than the book printed compares those, and says so).
"""
import contextlib
import errno
import os
import re
import statistics
import textwrap

import numpy as np

from reproduce import provenance, text_metrics
from reproduce.book_record import (PRINTED_PLATEAU_START, PRINTED_RUNS, PRINTED_WORD_RUNS, printed_curve,
                                   printed_word_steps)
from reproduce.compare import compare_run, curve_summary
from reproduce.errors import UserError, describe_error
from reproduce.files import pyplot, save_figure, write_atomic, write_csv, write_json
from reproduce.heldout import HELDOUT_TEXT, checkpoint_name, read_heldout, score_safely
from reproduce.recipes import BOOK_RECIPES, RECIPES, WORD_RECIPES, read_book_config
from reproduce.rundir import RunDir, read_json_object
from reproduce.train import Plateau

# The train options a study passes to every seed: the book loop's Config fields (the recipe, seed and
# run folder are the study's own), and for a word recipe those of them it reads and its own (study_fields).
TRAIN_FIELDS = ("graph", "state_variables", "doc_order", "stories_dir", "num_files", "num_steps", "docs_per_step",
                "steps_per_document", "num_nodes", "batch_size", "num_unrollings", "dropout", "chars_in_segment",
                "valid_docs")
WORD_FIELDS = ("embeddings", "embedding_size", "cbow_passes", "cbow_steps_per_doc", "layer_nodes", "fed_learning_rate",
               "sample_words")
STUDY_RECIPES = BOOK_RECIPES + WORD_RECIPES
WORD_HISTORY = ("step", "train_perplexity", "valid_perplexity", "learning_rate", "learning_rate_reduced")
TRAIN_STEPS_RANKED = (1, 13, 26)     # the train perplexities the rank table places
SUMMARY = "summary.json"
REPORT = "report.json"
HELDOUT_FIGURE = "heldout.png"
HELDOUT_CSV = "heldout.csv"
HELDOUT_COLUMNS = tuple(f"{kind}_{key}" for kind in ("best", "last") for key in ("step", "valid_perplexity", "perplexity"))
HELDOUT_FIGURES = {"best": "held-out perplexity (best checkpoint)", "last": "held-out perplexity (last checkpoint)"}


# ---------------------------------------------------------------- the folders a study writes
def disk_meaning(error):
    """An OSError's errno in words, as the user reads it: "no space left on device", "not a directory"."""
    text = error.strerror or describe_error(error)
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def disk_errors(option, path):
    """An OSError while writing what `option` names (the folder `path`) becomes one line naming the file and
    the errno's meaning."""
    try:
        yield
    except OSError as error:
        where = error.filename or path
        raise UserError(f"{option} {path}: cannot write {where}: {disk_meaning(error)}") from None


def check_writable(path, option):
    """The folder `path` (or the folder it will be made in) can be written into: a one-line error naming it and
    why not otherwise, before any work is done for it."""
    with disk_errors(option, path):
        existing = next(folder for folder in (path, *path.parents) if folder.exists())
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(existing))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))


def study_fields(recipe):
    """The train options a study of `recipe` passes to every seed (the recipe's value when one is not given)."""
    fields = TRAIN_FIELDS if recipe in BOOK_RECIPES else TRAIN_FIELDS + WORD_FIELDS
    return tuple(name for name in fields if name in RECIPES[recipe].options)


def shared_fields(recipe):
    """The options the seeds of one study must share (the stories may have been read from another folder)."""
    return tuple(name for name in study_fields(recipe) if name != "stories_dir")


# ---------------------------------------------------------------- nested fields of summary.json and report.json
class Items:
    """A list whose every item has `shape`, with at least `at_least` items."""

    def __init__(self, shape, at_least=0):
        self.shape, self.at_least = shape, at_least


class Values:
    """An object whose every value has `shape` (keys of the writer's choosing, such as seeds)."""

    def __init__(self, shape):
        self.shape = shape


NUMBER = (int, float)
MEASURE_VALUES = {name: NUMBER + (type(None),) for name in text_metrics.MEASURES}
STORY_ROWS = Items({"measures": MEASURE_VALUES})
SUMMARY_SHAPE = {
    "recipe": str, "seed": int, "steps": int, "options": dict,
    "comparison": {"environment": str,
                   "learning_curves": {"ours_per_step": Items({"step": int, "train_perplexity": NUMBER,
                                                               "valid_perplexity": NUMBER,
                                                               "learning_rate_reduced": (int, bool)}, at_least=1)}}}
# comparison.story of a book recipe's summary (a word recipe's has none: the printed stories are of bigrams)
STORY_SHAPE = {"our_stories": STORY_ROWS, "book_stories": STORY_ROWS, "our_median": MEASURE_VALUES}
OPTIONAL_NUMBER = NUMBER + (type(None),)
HELDOUT_CHECKPOINT = {"checkpoint": str, "step": (int, type(None)), "valid_perplexity": OPTIONAL_NUMBER,
                      "perplexity": NUMBER, "per_story": Values(NUMBER)}
# comparison.heldout of a summary, when it has one (summaries of older studies have none)
HELDOUT_SHAPE = {"scored": int, "stories": str, "missing": Items(int), "best": HELDOUT_CHECKPOINT,
                 "last": HELDOUT_CHECKPOINT}
BAND = {"median": NUMBER, "min": NUMBER, "max": NUMBER, "n": int}
FIGURE_VALUES = (int, float, type(None))
REPORT_SHAPE = {
    "recipe": str, "cell": str, "book_run": str, "num_steps": int, "seeds": Items(int, at_least=1),
    "finished_seeds": Items(int), "options": {"doc_order": str},
    "per_step": Items({"step": int, "train": BAND, "valid": BAND}, at_least=1),
    "figures_by_seed": Values(Values(FIGURE_VALUES)),
    "story_measures": Values({"book": (dict, type(None)), "seed_medians": Items(NUMBER)})}


def check_fields(path, value, shape, what, field=""):
    """`value` (read from `path`) has `shape`: a type or tuple of types, a dict of fields, Items or Values.
    A missing, empty or ill-typed field, however deep, is a one-line error naming the file and the field."""
    def fail(problem):
        raise UserError(f"{path}: field {field!r} {problem}; {what}")

    if isinstance(shape, dict):
        if not isinstance(value, dict):
            fail(f"is {value!r:.60}, not an object")
        for key, inner in shape.items():
            inner_field = f"{field}.{key}" if field else key
            if key not in value:
                raise UserError(f"{path}: no field {inner_field!r}; {what}")
            check_fields(path, value[key], inner, what, inner_field)
    elif isinstance(shape, Items):
        if not isinstance(value, list):
            fail(f"is {value!r:.60}, not a list")
        if len(value) < shape.at_least:
            fail("is empty")
        for index, item in enumerate(value):
            check_fields(path, item, shape.shape, what, f"{field}[{index}]")
    elif isinstance(shape, Values):
        if not isinstance(value, dict):
            fail(f"is {value!r:.60}, not an object")
        for key, item in value.items():
            check_fields(path, item, shape.shape, what, f"{field}.{key}")
    else:
        kinds = shape if isinstance(shape, tuple) else (shape,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = ("null" if kind is type(None) else kind.__name__ for kind in kinds)
            fail(f"is {value!r:.60}, not {' or '.join(names)}")


# ---------------------------------------------------------------- the seed folders
def completed_steps(run_dir):
    """The newest completed step of a seed folder: its newest checkpoint's, or its summary's (a light folder)."""
    summary = read_summary(run_dir)
    if summary:
        return summary["steps"]
    steps = RunDir(run_dir).steps() if (run_dir / "ckpt").is_dir() else []
    return steps[0] if steps else 0


def is_light(run_dir):
    return (run_dir / SUMMARY).is_file() and not (run_dir / "ckpt").is_dir()


def read_summary(run_dir):
    """seed-<k>/summary.json, checked; None when there is none, when the seed has trained on past it, or when it
    has no held-out figures (written before they were) and the seed's checkpoints are there to compute them."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    what = ("delete it: the report computes it again from the seed's checkpoints" if (run_dir / "ckpt").is_dir()
            else f"copy it again from the study's export, or delete {run_dir} to train that seed again")
    summary = read_json_object(path, what=what)
    check_fields(path, summary, SUMMARY_SHAPE, what)
    if summary["recipe"] in BOOK_RECIPES:
        check_fields(path, summary["comparison"], {"story": STORY_SHAPE}, what, "comparison")
    if summary["comparison"].get("heldout") is not None:
        check_fields(path, summary["comparison"]["heldout"], HELDOUT_SHAPE, what, "comparison.heldout")
    if (run_dir / "ckpt").is_dir() and RunDir(run_dir).steps()[:1] != [summary["steps"]]:
        return None                                # continued with more --num-steps: computed again when finished
    if (run_dir / "ckpt").is_dir() and "heldout" not in summary["comparison"]:
        return None                                # computed again, with the held-out figures
    return summary


def seed_config(run_dir):
    """The config of the seed folder `run_dir`, a run of a book or word recipe, checked when read."""
    return read_book_config(RunDir.open(run_dir), "study", word_runs=True)


def write_summary(run_dir, cache):
    """Write seed-<k>/summary.json from the seed's checkpoints and stories (its best and last checkpoint scored
    on the held-out stories in its stories folder first); returns it."""
    config = seed_config(run_dir)
    score_safely(run_dir, config.stories_dir, log=lambda line: print(f"{run_dir.name}: {line}", flush=True))
    comparison = run_comparison(run_dir, config.recipe, cache)
    summary = {"recipe": config.recipe, "seed": config.seed, "steps": comparison["steps"],
               "options": {name: getattr(config, name) for name in study_fields(config.recipe)},
               "comparison": comparison}
    write_json(run_dir / SUMMARY, summary)
    return summary


def run_comparison(run_dir, recipe, cache):
    """A seed's `comparison` from its checkpoints: compare_run's for a book recipe, word_comparison's for a word
    recipe."""
    return compare_run(run_dir, cache) if recipe in BOOK_RECIPES else word_comparison(run_dir)


def word_comparison(run_dir):
    """What the report reads of a word run, as compare_run gives it of a book run: its history (WORD_HISTORY of
    each step, from its newest checkpoint's state), its environment and its held-out figures. No story
    measures: the stories the book printed beside its curves are of bigrams."""
    run = RunDir.open(run_dir)
    history = [{key: row[key] for key in WORD_HISTORY} for row in run.read_state(run.steps()[0])["rows"]]
    heldout, _ = read_heldout(run, checkpoint_name(run, run.checkpoint_for_generation()))
    return {"steps": history[-1]["step"], "environment": provenance.describe(provenance.load(run.path)),
            "learning_curves": {"ours_per_step": history}, "heldout": heldout}


def seed_folders(study_dir):
    """(seed, run folder) of every seed folder with a completed step (a light folder's count), by seed."""
    found = []
    for path in study_dir.glob("seed-*"):
        match = re.fullmatch(r"seed-(\d+)", path.name)
        if match and path.is_dir() and completed_steps(path):
            found.append((int(match[1]), path))
    return sorted(found)


def seed_configs(study_dir, folders):
    """{seed: Config} of the seed folders, which must agree on recipe, shared options and step count: the
    odd seed (against the most common kind; the lowest seed's on a tie) is refused, named."""
    configs = {seed: seed_config(path) for seed, path in folders}

    def kind(config):
        return (("recipe", config.recipe),) + tuple((name, getattr(config, name))
                                                    for name in shared_fields(config.recipe))

    kinds = [kind(config) for config in configs.values()]
    usual = max(kinds, key=kinds.count)           # the first of the most common: the lowest seed's on a tie
    for (seed, path), this in zip(folders, kinds):
        for (name, value), (_, expected) in zip(this, usual):
            if value != expected:
                raise UserError(f"{path}: its {name} is {value!r}, the other seeds' {expected!r}; the seeds of a "
                                f"study share recipe, options and steps: move {path.name} out of {study_dir} "
                                "(or train the seeds alike)")
    return configs


def finished_seeds(folders, num_steps):
    """The seeds whose folder has completed all `num_steps` steps."""
    return [seed for seed, path in folders if completed_steps(path) >= num_steps]


def seed_comparison(run_dir, config, cache):
    """The `comparison` of one seed of a study of `config`: from its summary.json; a finished seed without one
    gets it; an unfinished seed's is computed from its checkpoints."""
    summary = read_summary(run_dir)
    if summary is None and completed_steps(run_dir) >= config.num_steps:
        summary = write_summary(run_dir, cache)
    return summary["comparison"] if summary else run_comparison(run_dir, config.recipe, cache)


def printed_run_of(config):
    """(the per-step rows the book printed of the run a study of `config` is set beside, its label)."""
    if config.recipe in BOOK_RECIPES:
        run = "gru" if config.cell == "gru" else "lstm"
        return printed_curve(run), PRINTED_RUNS[run]
    return printed_word_steps(config.printed_run), PRINTED_WORD_RUNS[config.printed_run]


# ---------------------------------------------------------------- bands, ranks and verdicts
def printed_plateau_start(config):
    """The plateau counter's start of the book's printed run, where it did not start fresh
    (book_record.PRINTED_PLATEAU_START) and the recipe feeds a fixed learning rate, so that the counter changes
    nothing but which steps report a halving; None otherwise."""
    start = PRINTED_PLATEAU_START.get(getattr(config, "printed_run", None))
    return start if start and getattr(config, "fed_learning_rate", 0) else None


def counted_from(start, history, config):
    """The history with its halvings counted by the notebook's rule from the counter `start`, replayed over its
    valid perplexities."""
    plateau = Plateau(config.decay_threshold, start["decay_count"], start["min_perplexity"])
    return [{**row, "learning_rate_reduced": int(plateau.update(row["valid_perplexity"]))} for row in history]


def halvings_counted_text(start, config):
    return (f"learning-rate halvings are counted as the printed run counted them: its plateau counter started from "
            f"{start['decay_count']} checks without a new best and a best of {start['min_perplexity']:g} (left by "
            f"earlier runs of the notebook's training cell), replayed over each seed's valid perplexities; the loop "
            f"feeds a fixed rate ({config.fed_learning_rate:g}), so the count changes no other figure")


def band(values):
    """median, min, max (and the 10-90 % range from 8 values on) of a list of numbers."""
    summary = {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
    if len(values) >= 8:
        summary["p10"], summary["p90"] = (float(x) for x in np.percentile(values, [10, 90]))
    return summary


def band_or_none(values):
    return band(values) if values else None


def place(book_value, seed_values):
    """Where the book's figure falls among the seeds': its rank among seeds + book, and a verdict."""
    ordered = sorted(seed_values)
    rank = sum(v < book_value for v in ordered) + 1
    span = f"{_fmt(ordered[0])}-{_fmt(ordered[-1])}"
    if ordered[0] <= book_value <= ordered[-1]:
        verdict = f"inside: the book's {_fmt(book_value)} ranks {rank} of {len(ordered) + 1}"
    else:
        side = "below" if book_value < ordered[0] else "above"
        verdict = f"outside: the book's {_fmt(book_value)} is {side} all {len(ordered)} seeds ({span})"
    return {"book": book_value, "rank": rank, "of": len(ordered) + 1, "seeds": ordered,
            "inside": ordered[0] <= book_value <= ordered[-1], "verdict": verdict}


def _fmt(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def run_figures(history):
    """The figures the book printed, computed for one run's history (the rank table's rows)."""
    summary = curve_summary(history)
    by_step = {row["step"]: row for row in history}
    figures = {"first valid perplexity": summary["first_valid"], "best valid perplexity": summary["best_valid"],
               "step of the best valid perplexity": summary["best_step"],
               "last valid perplexity": summary["last_valid"],
               "learning-rate halvings": len(summary["reductions_after_steps"]),
               "first halving after step": (summary["reductions_after_steps"] or [None])[0]}
    for step in TRAIN_STEPS_RANKED:
        figures[f"train perplexity at step {step}"] = by_step[step]["train_perplexity"] if step in by_step else None
    return figures


def steps_outside(per_step, book_curve):
    """The steps at which the book's printed curve leaves the seeds' range, for train and valid perplexity,
    beside how many to expect if the book's run were one more seed: a value outside the range of n others
    has probability 2 / (n + 1) at each step."""
    book = {row["step"]: row for row in book_curve}
    result = {}
    for key in ("train", "valid"):
        rows = [row for row in per_step if row["step"] in book]
        result[key] = {"steps": [row["step"] for row in rows
                                 if not row[key]["min"] <= book[row["step"]][f"{key}_perplexity"] <= row[key]["max"]],
                       "of": len(rows),
                       "expected": sum(2 / (row[key]["n"] + 1) for row in rows)}
    return result


def seed_medians_inside(measure):
    """How many seeds' story medians of one story measure (a report's story_measures entry) fall inside the
    range of the book's printed stories."""
    book = measure["book"]
    return sum(book["min"] <= m <= book["max"] for m in measure["seed_medians"])


# ---------------------------------------------------------------- held-out stories
def heldout_figures(heldout):
    """A seed's held-out perplexity of its best and last checkpoint (None without held-out figures)."""
    return {name: heldout[kind]["perplexity"] if heldout else None for kind, name in HELDOUT_FIGURES.items()}


def ranks(values):
    """1-based ranks of `values`, ties sharing their mean rank."""
    values = np.asarray(values, dtype=float)
    ranked = np.empty(len(values))
    ranked[values.argsort(kind="stable")] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        ranked[values == value] = ranked[values == value].mean()
    return ranked


def spearman(xs, ys):
    """Spearman's rank correlation of two lists; None for fewer than 3 pairs or a list of equal values."""
    if len(xs) < 3:
        return None
    x, y = ranks(xs), ranks(ys)
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def heldout_section(heldouts):
    """The report's held-out part from {seed: comparison.heldout or None} of the finished seeds: per seed the
    valid and held-out perplexity of its best and last checkpoint, their bands, Spearman's rank correlation of
    valid and held-out perplexity of the best checkpoints, and each story's median over the seeds."""
    scored = {seed: h for seed, h in heldouts.items() if h is not None}
    by_seed = {str(seed): {column: h[column.split("_", 1)[0]][column.split("_", 1)[1]] for column in HELDOUT_COLUMNS}
               for seed, h in scored.items()}
    pairs = [(h["best"]["valid_perplexity"], h["best"]["perplexity"]) for h in scored.values()
             if h["best"]["valid_perplexity"] is not None]
    stories = sorted({story for h in scored.values() for story in h["best"]["per_story"]}, key=int)
    per_story = {story: statistics.median(h["best"]["per_story"][story] for h in scored.values()
                                          if story in h["best"]["per_story"]) for story in stories}
    return {"seeds": sorted(scored), "seeds_without": sorted(set(heldouts) - set(scored)), "by_seed": by_seed,
            "bands": {kind: band_or_none([h[kind]["perplexity"] for h in scored.values()]) for kind in ("best", "last")},
            "valid_bands": {kind: band_or_none([h[kind]["valid_perplexity"] for h in scored.values()
                                                if h[kind]["valid_perplexity"] is not None]) for kind in ("best", "last")},
            "spearman": spearman(*zip(*pairs)) if pairs else None, "spearman_pairs": len(pairs),
            "stories_scored": {str(seed): h["scored"] for seed, h in scored.items()},
            "missing_stories": sorted({n for h in scored.values() for n in h["missing"]}),
            "per_story_median": per_story}


def heldout_summary(section):
    """One line on a report's held-out part."""
    if not section["seeds"]:
        return ("missing for every finished seed (summaries of an older study, or no story of them in the stories "
                "folder)" if section["seeds_without"] else "no seed has finished")
    best = section["bands"]["best"]
    rho = section["spearman"]
    rho_text = (f"Spearman {rho:+.2f} between valid and held-out over {section['spearman_pairs']} seeds"
                if rho is not None else f"too few seeds ({section['spearman_pairs']}) for a rank correlation")
    without = (f"; no held-out figures for seed{'s' if len(section['seeds_without']) > 1 else ''} "
               f"{', '.join(map(str, section['seeds_without']))} (a summary of an older study, or no story of them "
               "in the stories folder)" if section["seeds_without"] else "")
    seeds = len(section["seeds"])
    return (f"best checkpoints {best['median']:.2f} ({best['min']:.2f}-{best['max']:.2f}) over "
            f"{seeds} seed{'s' if seeds > 1 else ''}; {rho_text}{without}")


# ---------------------------------------------------------------- the report
def compared_steps(config, printed):
    """The steps a study of `config` and the book's `printed` rows both have: 1 ... the fewer of their counts."""
    return min(config.num_steps, printed[-1]["step"])


def up_to(rows, last_step):
    """The per-step rows of steps 1 ... `last_step`."""
    return [row for row in rows if row["step"] <= last_step]


def write_report(study_dir):
    """report.json, report.md, band.png and (for a book recipe) story_measures.png of the seed folders in
    `study_dir`; returns the report."""
    folders = seed_folders(study_dir)
    if not folders:
        raise UserError(f"{study_dir}: no seed folder with a completed step (seed-<k>/); run the study first")
    config = seed_configs(study_dir, folders)[folders[0][0]]
    cache = {}
    comparisons = {seed: seed_comparison(path, config, cache) for seed, path in folders}
    histories = {seed: comparison["learning_curves"]["ours_per_step"] for seed, comparison in comparisons.items()}
    plateau_start = printed_plateau_start(config)
    if plateau_start:
        histories = {seed: counted_from(plateau_start, history, config) for seed, history in histories.items()}
    printed, book_label = printed_run_of(config)
    compared = compared_steps(config, printed)
    book_curve = up_to(printed, compared)
    finished = [seed for seed, history in histories.items() if history[-1]["step"] >= config.num_steps]

    steps = sorted({row["step"] for history in histories.values() for row in history})
    per_step = []
    for step in steps:
        rows = [row for history in histories.values() for row in history if row["step"] == step]
        per_step.append({"step": step, "train": band([r["train_perplexity"] for r in rows]),
                         "valid": band([r["valid_perplexity"] for r in rows])})

    heldout = heldout_section({seed: comparisons[seed].get("heldout") for seed in finished})
    seed_figures = {seed: {**run_figures(histories[seed]), **heldout_figures(comparisons[seed].get("heldout"))}
                    for seed in finished}
    compared_figures = {seed: run_figures(up_to(histories[seed], compared)) for seed in finished}
    ranks = {}
    for name, book_value in run_figures(book_curve).items():
        values = [f[name] for f in compared_figures.values() if f[name] is not None]
        if values and book_value is not None:
            ranks[name] = place(book_value, values)

    measures = story_measures({seed: comparison["story"] for seed, comparison in comparisons.items()
                               if "story" in comparison})
    headline = ranks.get("best valid perplexity")
    report = {"study": str(study_dir), "recipe": config.recipe, "cell": config.cell,
              "model": config.model_description(), "seeds": [s for s, _ in folders],
              "finished_seeds": finished, "num_steps": config.num_steps, "book_run": book_label,
              "printed_steps": printed[-1]["step"], "compared_steps": compared,
              "options": {name: getattr(config, name) for name in study_fields(config.recipe)},
              "verdict": headline["verdict"] if headline else "no seed has finished: no verdict yet",
              "per_step": per_step, "ranks": ranks, "steps_outside": steps_outside(per_step, book_curve),
              **({"halvings_counted": halvings_counted_text(plateau_start, config)} if plateau_start else {}),
              "figures_by_seed": {str(seed): figures for seed, figures in seed_figures.items()},
              "story_measures": measures, "heldout": heldout,
              "environments": sorted({comparison["environment"] for comparison in comparisons.values()})}
    figures = ["band.png", *(["story_measures.png"] if measures else []), HELDOUT_FIGURE, HELDOUT_CSV]
    plot_band(study_dir / "band.png", per_step, book_curve,
              f"{config.recipe}: {len(folders)} seeds ({len(finished)} finished)", book_label)
    if measures:
        plot_story_measures(study_dir / "story_measures.png", measures, book_label)
    plot_heldout(study_dir / HELDOUT_FIGURE, heldout, f"{config.recipe}: valid and held-out perplexity per seed")
    write_csv(study_dir / HELDOUT_CSV, ["seed", *HELDOUT_COLUMNS, "stories"],
              [{"seed": seed, **row, "stories": heldout["stories_scored"][seed]} for seed, row in heldout["by_seed"].items()])
    write_json(study_dir / REPORT, report)
    write_atomic(study_dir / "report.md", report_markdown(report))
    print(f"Verdict: {report['verdict']}" + (f" ({compared_text(report)})" if compared_text(report) else ""))
    print(f"Held-out stories {HELDOUT_TEXT}: {heldout_summary(heldout)}")
    print(f"Report: {study_dir / 'report.md'} (and report.json, {', '.join(figures)})")
    return report


def story_measures(stories):
    """The report's story measures from {seed: comparison.story} ({} for a word recipe's seeds, which have none):
    per measure every seed's and the book's printed stories' values and bands, and each seed's median."""
    if not stories:
        return {}
    measures = {}
    for name in text_metrics.MEASURES:
        ours = [row["measures"][name] for story in stories.values() for row in story["our_stories"]
                if row["measures"][name] is not None]
        book = [row["measures"][name] for row in next(iter(stories.values()))["book_stories"]
                if row["measures"][name] is not None]
        seed_medians = [story["our_median"][name] for story in stories.values() if story["our_median"][name] is not None]
        measures[name] = {"ours": band(ours) if ours else None, "book": band(book) if book else None,
                          "seed_medians": seed_medians, "values_ours": ours, "values_book": book}
    return measures


def compared_text(report):
    """A sentence on the steps the report compares when the study's steps and the book's printed ones differ,
    else ""."""
    printed, compared = report["printed_steps"], report["compared_steps"]
    if compared == printed == report["num_steps"]:
        return ""
    return (f"the book printed {printed} step{'s' if printed > 1 else ''} of its run, the study has "
            f"{report['num_steps']}: the figures, ranks and verdict compare the {compared} step"
            f"{'s' if compared > 1 else ''} both have")


def current_report(study_dir):
    """The study's report.json, checked field by field, when it matches the seed folders there now (their
    seeds, finished seeds and step count); else the report written again, saying why."""
    folders = seed_folders(study_dir)
    if not folders:
        raise UserError(f"{study_dir}: not a study folder with a finished seed (seed-<k>/); give the folder "
                        "`study` made or exported", exit_code=2)
    path = study_dir / REPORT
    if not path.is_file():
        return write_report(study_dir)
    what = "delete it: `study --report-only` writes it again from the seed folders"
    report = read_json_object(path, what=what)
    check_fields(path, report, REPORT_SHAPE, what)
    num_steps = seed_configs(study_dir, folders)[folders[0][0]].num_steps
    now = {"seeds": [seed for seed, _ in folders], "finished_seeds": finished_seeds(folders, num_steps),
           "num_steps": num_steps}
    stale = [f"{name} {report[name]} (the seed folders: {value})" for name, value in now.items()
             if report[name] != value]
    if sorted(report["figures_by_seed"], key=int) != [str(seed) for seed in now["finished_seeds"]]:
        stale.append(f"figures_by_seed of seeds {', '.join(report['figures_by_seed']) or 'none'} (the finished "
                     f"seeds: {', '.join(map(str, now['finished_seeds'])) or 'none'})")
    if "heldout" not in report:
        stale.append("no held-out figures")
    if "model" not in report and report["recipe"] in WORD_RECIPES:
        stale.append("no description of its word model")
    if stale:
        print(f"{path} does not match its seed folders ({'; '.join(stale)}): writing it again")
        return write_report(study_dir)
    return report


def model_of(report):
    """The model of a study's report in a few words (its config's model_description; a report written before
    reports had it, all of book recipes: its cell)."""
    return report.get("model", report["cell"])


def report_markdown(report):
    lines = [f"# Study of `{report['recipe']}` ({model_of(report)}) over {len(report['seeds'])} seeds "
             f"({len(report['finished_seeds'])} finished)", "",
             f"**Verdict: {report['verdict']}** (best valid perplexity, against the {report['book_run']}"
             + (f"; {compared_text(report)}" if compared_text(report) else "") + ").", "",
             f"Seeds {', '.join(map(str, report['seeds']))}; finished ({report['num_steps']} steps): "
             f"{len(report['finished_seeds'])}. Options: "
             + ", ".join(f"{k} {v}" for k, v in report["options"].items()) + ".",
             "", "Made on: " + "; ".join(report["environments"]) + ".", "",
             "![band of the seeds with the book's curve](band.png)", "",
             "## Where each figure the book printed falls among the seeds", "",
             "The ranks and the verdict count the finished seeds only; the per-step table every seed.", "",
             "| figure | the book | seeds: min - median - max | rank of the book (low first) | verdict |",
             "|---|---|---|---|---|"]
    for name, entry in report["ranks"].items():
        seeds = entry["seeds"]
        median = statistics.median(seeds)
        median = int(median) if isinstance(entry["book"], int) and float(median).is_integer() else median
        lines.append(f"| {name} | {_fmt(entry['book'])} | {_fmt(seeds[0])} - {_fmt(median)} - "
                     f"{_fmt(seeds[-1])} | {entry['rank']} of {entry['of']} | {entry['verdict'].split(':')[0]} |")
    if report.get("halvings_counted"):
        lines += ["", report["halvings_counted"][0].upper() + report["halvings_counted"][1:] + "."]
    for key, entry in report["steps_outside"].items():
        listed = f" (steps {', '.join(map(str, entry['steps']))})" if entry["steps"] else ""
        lines += ["", f"The book's {key} curve is outside the seeds' range at {len(entry['steps'])} of {entry['of']} "
                      f"steps{listed}; were the book's run one more seed, {entry['expected']:.1f} would be expected."]
    lines += heldout_markdown(report["heldout"])
    lines += ["", "## Per step", "", "| step | train: median (min - max) | valid: median (min - max) |",
              "|---|---|---|"]
    for row in report["per_step"]:
        t, v = row["train"], row["valid"]
        lines.append(f"| {row['step']} | {t['median']:.2f} ({t['min']:.2f} - {t['max']:.2f}) | "
                     f"{v['median']:.2f} ({v['min']:.2f} - {v['max']:.2f}) |")
    if not report["story_measures"]:
        return "\n".join(lines) + "\n"
    lines += ["", "## The stories", "", "![story measures](story_measures.png)", "",
              f"| measure | {report['book_run']}'s stories: median (min - max) | every seed's stories: median "
              "(min - max) | seeds whose median is inside the book's range |", "|---|---|---|---|"]
    for name, entry in report["story_measures"].items():
        book, ours = entry["book"], entry["ours"]
        if not (book and ours):
            continue
        inside = seed_medians_inside(entry)
        lines.append(f"| {text_metrics.MEASURES[name]} | {book['median']:.3f} ({book['min']:.3f} - {book['max']:.3f}) "
                     f"| {ours['median']:.3f} ({ours['min']:.3f} - {ours['max']:.3f}) | {inside} of "
                     f"{len(entry['seed_medians'])} |")
    return "\n".join(lines) + "\n"


def _band_text(entry):
    return f"{entry['median']:.2f} ({entry['min']:.2f} - {entry['max']:.2f})" if entry else "n/a"


def heldout_markdown(section):
    """report.md's part on the held-out stories."""
    lines = ["", f"## Held-out stories {HELDOUT_TEXT}", "",
             "The site's stories the book never read, scored from each finished seed's best and last checkpoint "
             "(`evaluate`'s perplexity, pooled over the stories).", "", heldout_summary(section) + "."]
    if section["missing_stories"]:
        lines += ["", f"Not in some seed's stories folder, so not scored there: "
                      f"{', '.join(map(str, section['missing_stories']))}."]
    if not section["seeds"]:
        return lines
    lines += ["", f"![valid against held-out perplexity per seed]({HELDOUT_FIGURE})", "",
              "| checkpoint | valid: median (min - max) | held-out: median (min - max) |", "|---|---|---|"]
    for kind in ("best", "last"):
        lines.append(f"| {kind} | {_band_text(section['valid_bands'][kind])} | {_band_text(section['bands'][kind])} |")
    lines += ["", "| seed | best: step | valid | held-out | last: step | valid | held-out | stories |",
              "|---|---|---|---|---|---|---|---|"]
    for seed, row in section["by_seed"].items():
        lines.append(f"| {seed} | " + " | ".join(f"{row[f'{kind}_step']} | {_number(row[f'{kind}_valid_perplexity'])} | "
                                                 f"{row[f'{kind}_perplexity']:.2f}" for kind in ("best", "last"))
                     + f" | {section['stories_scored'][seed]} |")
    return lines


def _number(value):
    return "n/a" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------- figures
def plot_heldout(path, section, title):
    """Valid against held-out perplexity, one point per seed and checkpoint (best filled, last hollow)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 5))
    for kind, style in (("best", dict(color="tab:blue")), ("last", dict(facecolors="none", edgecolors="tab:orange"))):
        points = [(seed, row[f"{kind}_valid_perplexity"], row[f"{kind}_perplexity"])
                  for seed, row in section["by_seed"].items() if row[f"{kind}_valid_perplexity"] is not None]
        axes.scatter([p[1] for p in points], [p[2] for p in points], label=f"{kind} checkpoint (labelled by seed)",
                     **style)
        for seed, valid, heldout in points:
            axes.annotate(seed, (valid, heldout), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if not section["by_seed"]:
        axes.text(0.5, 0.5, "no held-out figures", ha="center", va="center", transform=axes.transAxes)
    rho = section["spearman"]
    axes.set_title(f"{title}\nSpearman (best checkpoints): "
                   + (f"{rho:+.2f} over {section['spearman_pairs']} seeds" if rho is not None else "too few seeds"),
                   fontsize=9)
    axes.set_xlabel("valid perplexity")
    axes.set_ylabel(f"held-out perplexity (stories {HELDOUT_TEXT})")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def perplexity_axes(axes, title):
    """Log-scale perplexity against step, labelled 1-2-5, as every band figure shows it."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # loaded to draw only
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("step")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)


def plot_band(path, per_step, book_curve, title, book_label):
    plt = pyplot()
    figure, panels = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    steps = [row["step"] for row in per_step]
    for axes, key, book_key in zip(panels, ("train", "valid"), ("train_perplexity", "valid_perplexity")):
        bands = [row[key] for row in per_step]
        axes.fill_between(steps, [b["min"] for b in bands], [b["max"] for b in bands], color="tab:blue", alpha=0.15,
                          label="range of the seeds")
        if all("p10" in b for b in bands):
            axes.fill_between(steps, [b["p10"] for b in bands], [b["p90"] for b in bands], color="tab:blue",
                              alpha=0.25, label="10-90 % of the seeds")
        axes.plot(steps, [b["median"] for b in bands], color="tab:blue", label="median of the seeds")
        axes.plot([r["step"] for r in book_curve], [r[book_key] for r in book_curve], "o-", color="black",
                  markersize=3, label=f"{book_label} (printed)")
        perplexity_axes(axes, f"{key} perplexity")
    panels[0].set_ylabel("perplexity")
    panels[1].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)


def plot_story_measures(path, measures, book_label):
    plt = pyplot()
    figure, panels = plt.subplots(1, len(measures), figsize=(2.6 * len(measures), 4.2))
    for axes, (name, entry) in zip(panels, measures.items()):
        data = [entry["values_book"] or [np.nan], entry["values_ours"] or [np.nan]]
        axes.boxplot(data, widths=0.6)
        axes.set_xticks([1, 2], ["book", "seeds"])
        title, unit = text_metrics.MEASURE_AXES[name]
        axes.set_title(textwrap.fill(title, 22), fontsize=9)
        axes.set_ylabel(textwrap.fill(unit, 30), fontsize=8)
    figure.suptitle(f"story measures: {book_label}'s printed stories beside every seed's stories")
    figure.tight_layout()
    save_figure(figure, path)
