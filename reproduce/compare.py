"""Compare runs with the book's printed output: the data read, the learning curves, the stories.

`python reproduce/main.py compare --run DIR [--run DIR2 ...] [--out DIR]` writes report.md, report.json
and PNG figures: into the run folder for one run; for several runs into --out (default: the first
run's folder), adding one figure and table of every run's valid perplexity beside the book's LSTM and GRU.
A word run (one at a time) is set beside its notebook's printed run at the steps both have
(`compare_word_run`).

What the book printed comes from `reproduce.book_record`.
"""
import json
import statistics
import textwrap
from pathlib import Path

import tensorflow as tf

from reproduce import provenance, text_metrics
from reproduce.book_record import (PRINTED_RUNS, PRINTED_WORD_RUNS, article_sample, corpus_fingerprint,
                                   printed_curve, printed_stories, printed_word_steps)
from reproduce.curves import plot_perplexity, printed_label
from reproduce.data import fingerprint, load_corpus, same_stories
from reproduce.errors import UserError, describe_error, disk_failure
from reproduce.evaluate import ranges_text
from reproduce.files import pyplot, save_figure, write_atomic, write_json
from reproduce.heldout import HELDOUT_FILE, HELDOUT_TEXT, describe, read_heldout
from reproduce.model import BookModel
from reproduce.recipes import WORD_RECIPES, read_book_config, read_book_run
from reproduce.rundir import RunDir, checkpoint_step
from reproduce.session import session_config
from reproduce.train import perplexity_of
from reproduce.word_runs import compare_with_book

BOOK_STORIES_FROM_STEP = 10         # the verdict ranges use the book's stories from this step on

IDENTICAL = "identical"
TIES = "identical up to the order of equal counts"
DIFFERENT = "different"
MAX_LISTED = 10                     # differences listed per field in report.md


def add_arguments(parser):
    parser.add_argument("--run", required=True, action="extend", nargs="+", metavar="DIR",
                        help="a run folder written by `train`; several (--run A B or --run A --run B) "
                             "are also compared with each other")
    parser.add_argument("--out", metavar="DIR", help="where the report goes (default: the first run's folder)")


def run(args):
    compare_runs(args.run, out_dir=args.out)


# ---------------------------------------------------------------- 1. data
def check_data(ours, book, counts, vocabulary):
    """Our corpus fingerprint against the book's, field by field.

    `counts`: bigram -> count in the run's stories (all bigrams, not only the vocabulary's);
    `vocabulary`: the run's id -> bigram list. Fields whose order among equal counts came from
    Python 3.5's randomised dict order (the 15 least common bigrams, the sample ids) are checked
    up to that order.
    """
    fields = {}
    for key in ("total_bigrams", "vocabulary_size", "most_common"):
        same = ours[key] == book[key]
        fields[key] = {"status": IDENTICAL if same else DIFFERENT, "note": f"{book[key]}",
                       "differences": [] if same else [f"ours {ours[key]}, the book's {book[key]}"]}
    fields["documents"] = _check_documents(ours["documents"], book["documents"])
    tie_fields = ("least_common_tail", "sample_data_doc0_first10", "sample_data_doc1_first10")
    if fields["documents"]["status"] == DIFFERENT:      # other stories: their ties say nothing
        for key in tie_fields:
            fields[key] = {"status": DIFFERENT, "note": "", "differences": ["not checked: the documents differ"]}
    else:
        fields["least_common_tail"] = _check_tail(ours["least_common_tail"], book["least_common_tail"], counts)
        for key, document in zip(tie_fields[1:], (0, 1)):
            bigrams = book["documents"][document]["first_50_bigrams"]
            fields[key] = _check_ids(ours[key], book[key], bigrams, counts, vocabulary)
    statuses = {field["status"] for field in fields.values()}
    verdict = DIFFERENT if DIFFERENT in statuses else TIES if TIES in statuses else IDENTICAL
    return {"verdict": verdict, "fields": fields}


def _check_documents(ours, book):
    differences = []
    if len(ours) < len(book):
        differences.append(f"{len(ours)} documents read, the book read {len(book)}: "
                           f"{book[len(ours)]['file']}-{book[-1]['file']} not read")
    elif len(ours) > len(book):
        differences.append(f"{len(ours)} documents read, the book read {len(book)}: "
                           f"{ours[len(book)]['file']}-{ours[-1]['file']} are extra")
    for mine, theirs in zip(ours, book):
        if mine["file"] != theirs["file"]:
            differences.append(f"document {mine['document']}: file {mine['file']}, the book's {theirs['file']}")
        elif mine["bigrams"] != theirs["bigrams"]:
            differences.append(f"{mine['file']}: {mine['bigrams']} bigrams, the book's {theirs['bigrams']}")
        elif mine["first_50_bigrams"] != theirs["first_50_bigrams"]:
            position = next(i for i, (a, b) in enumerate(zip(mine["first_50_bigrams"], theirs["first_50_bigrams"]))
                            if a != b)
            differences.append(f"{mine['file']}: bigram {position} is {mine['first_50_bigrams'][position]!r}, "
                               f"the book's {theirs['first_50_bigrams'][position]!r}")
    return {"status": DIFFERENT if differences else IDENTICAL, "differences": differences,
            "note": f"{len(book)} files, each one's bigram count and first 50 bigrams"}


def _check_tail(ours, book, counts):
    if ours == book:
        return {"status": IDENTICAL, "differences": [], "note": ""}
    differences = [f"{bigram!r}: the book counts {count}, ours {counts.get(bigram, 0)}"
                   for bigram, count in book if counts.get(bigram, 0) != count]
    if [n for _, n in ours] != [n for _, n in book]:
        differences.append(f"the counts of our last 15 are {[n for _, n in ours]}, the book's {[n for _, n in book]}")
    note = (f"each of the book's {len(book)} has its printed count here (counts {sorted({n for _, n in book})}); "
            "the order among equal counts differs")
    return {"status": DIFFERENT if differences else TIES, "differences": differences, "note": note}


def _check_ids(ours, book, bigrams, counts, vocabulary):
    """Each printed id must lie inside the ids of its bigram's tie group (the bigrams with its count)."""
    if ours == book:
        return {"status": IDENTICAL, "differences": [], "note": f"{book}"}
    dictionary = {bigram: i for i, bigram in enumerate(vocabulary)}
    differences, swapped = [], []
    for position, (bigram, book_id) in enumerate(zip(bigrams, book)):
        if bigram in dictionary and dictionary[bigram] != 0:
            count = counts.get(bigram, 0)
            group = [i for i, b in enumerate(vocabulary) if i and counts.get(b, 0) == count]
            low, high = min(group), max(group)
        else:                                            # not in the vocabulary: UNK, id 0
            low = high = 0
        if position < len(ours) and ours[position] != book_id:
            swapped.append(f"{bigram!r} is {ours[position]} here, {book_id} in the book (ids {low}-{high} "
                           f"share its count {counts.get(bigram, 0)})")
        if not low <= book_id <= high:
            differences.append(f"bigram {position} {bigram!r}: the book's id {book_id} is outside our ids "
                               f"{low}-{high} of the bigrams with its count")
    if len(ours) != len(book):
        differences.append(f"{len(ours)} ids, the book printed {len(book)}")
    return {"status": DIFFERENT if differences else TIES, "differences": differences, "note": "; ".join(swapped)}


# ---------------------------------------------------------------- 2. learning curves
def curve_summary(rows):
    best_valid, best_step = min((row["valid_perplexity"], row["step"]) for row in rows)
    return {"steps": len(rows), "first_valid": rows[0]["valid_perplexity"], "best_valid": best_valid,
            "best_step": best_step, "last_valid": rows[-1]["valid_perplexity"],
            "reductions_after_steps": [row["step"] for row in rows if row["learning_rate_reduced"]]}


# ---------------------------------------------------------------- 3. the story
def measure_range(rows):
    """measure -> [min, max] over the rows' measures (None values left out)."""
    spans = {}
    for name in text_metrics.MEASURES:
        values = [row["measures"][name] for row in rows if row["measures"][name] is not None]
        spans[name] = [min(values), max(values)] if values else None
    return spans


def verdict(value, span):
    if value is None or span is None:
        return "n/a"
    return "inside" if span[0] <= value <= span[1] else "outside"


def article_sample_perplexity(run, config, vocabulary, history, text):
    """Perplexity the run's best checkpoint gives the article's sample, from a zero valid state.

    Where the book's bigrams started in the excerpt is unknown, so it is cut into non-overlapping
    bigrams from its first and from its second character; the lower perplexity is the headline.
    """
    dictionary = {bigram: i for i, bigram in enumerate(vocabulary)}
    model = BookModel(config, len(vocabulary))
    by_phase = {}
    with tf.compat.v1.Session(graph=model.graph, config=session_config()) as session:
        prefix = run.restore_for_reading(session, model.saver, model.saved_variables)
        for phase in (0, 1):
            ids = [dictionary.get(text[i:i + 2], 0) for i in range(phase, len(text) - 1, 2)]
            by_phase[phase] = {"perplexity": perplexity_of(session, model, ids), "bigrams": len(ids),
                               "unk_bigrams": ids.count(0)}
    best_phase = min(by_phase, key=lambda phase: by_phase[phase]["perplexity"])
    step = checkpoint_step(prefix)
    valid = next((row["valid_perplexity"] for row in history if row["step"] == step), None)
    return {"perplexity": by_phase[best_phase]["perplexity"], "phase": best_phase, "phases": by_phase,
            "checkpoint": str(prefix.relative_to(run.path)), "checkpoint_step": step,
            "checkpoint_valid_perplexity": valid}


def story_part(run, config, vocabulary, history, corpus, book_model):
    book_rows = [{"step": step, "measures": text_metrics.text_measures(story, corpus)}
                 for step, _, story in printed_stories(book_model) if step >= BOOK_STORIES_FROM_STEP]
    span = measure_range(book_rows)
    sample = article_sample()
    ours_from = BOOK_STORIES_FROM_STEP if history[-1]["step"] >= BOOK_STORIES_FROM_STEP else 1
    our_rows = [{"step": row["step"], "measures": text_metrics.text_measures(row["sample"], corpus)}
                for row in history if row["step"] >= ours_from]
    our_median = {}
    for name in text_metrics.MEASURES:
        values = [row["measures"][name] for row in our_rows if row["measures"][name] is not None]
        our_median[name] = statistics.median(values) if values else None
    story_path = run.path / "story.txt"
    story = None
    if story_path.exists():
        try:
            story_text = story_path.read_text(encoding="utf-8").strip("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{story_path}: unreadable ({describe_error(e)}); delete it or write it again with "
                            f"`generate --checkpoint {run.path} --output {story_path}`") from e
        story_measures = text_metrics.text_measures(story_text, corpus)
        story = {"measures": story_measures,
                 "verdicts": {name: verdict(value, span[name]) for name, value in story_measures.items()}}
    return {
        "book_model": book_model,
        "book_stories_from_step": BOOK_STORIES_FROM_STEP, "book_stories": book_rows, "book_range": span,
        "article_sample": {"measures": text_metrics.text_measures(sample, corpus),
                           **article_sample_perplexity(run, config, vocabulary, history, sample)},
        "our_stories_from_step": ours_from, "our_stories": our_rows, "our_median": our_median,
        "our_inside": {name: sum(verdict(row["measures"][name], span[name]) == "inside" for row in our_rows)
                       for name in text_metrics.MEASURES},
        "verdicts": {name: verdict(our_median[name], span[name]) for name in text_metrics.MEASURES},
        "story_txt": story,
    }


# ---------------------------------------------------------------- one run
def load_history(run, key="history"):
    """The per-step rows (metrics and the story after each step) of the newest complete step, kept under `key`
    in its state file (a word run's: "rows")."""
    steps = run.steps()
    if not steps:
        raise UserError(f"{run.path}: no completed training step (ckpt/state-<k>.json); train first")
    state_path = run.ckpt / f"state-{steps[0]}.json"
    try:
        return json.loads(state_path.read_text())[key]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{state_path}: unreadable ({describe_error(e)}); the run folder is damaged") from e


def load_stories(config, vocabulary, cache):
    """The run's stories as the run read them, and a CorpusIndex of them; shared by runs on the same files."""
    key = (str(Path(config.stories_dir).resolve()), config.num_files)
    if key not in cache:
        corpus = load_corpus(config.stories_dir, config.num_files, reverse_dictionary=vocabulary,
                             allow_other_corpus=config.allow_other_corpus)
        cache[key] = corpus, text_metrics.CorpusIndex("".join(document) for document in corpus.documents)
    return cache[key]


def compare_run(run_path, cache):
    """Everything the report says about one run, as a JSON-ready dict."""
    run = RunDir.open(run_path)
    config, vocab = read_book_run(run)
    vocabulary = vocab["bigrams"]
    history = load_history(run)
    corpus, corpus_index = load_stories(config, vocabulary, cache)
    notes = []
    stories_now = fingerprint(corpus)
    try:
        ours = json.loads((run.path / "corpus_fingerprint.json").read_text())
        if not same_stories(ours, stories_now):
            notes.append(f"the stories now in {config.stories_dir} differ from those the run read; "
                         "the data check uses what the run read")
    except (OSError, ValueError):
        ours = stories_now
        notes.append("the run folder has no corpus_fingerprint.json; the data check uses the stories now "
                     f"in {config.stories_dir}")
    book_model = "gru" if config.cell == "gru" else "lstm"
    book_models = ["lstm", "gru"] if book_model == "gru" else ["lstm"]
    report = {
        "run": str(run.path), "name": run.path.name, "recipe": config.recipe, "cell": config.cell,
        "seed": config.seed, "steps": history[-1]["step"], "num_steps": config.num_steps, "notes": notes,
        "environment": provenance.describe(provenance.load(run.path)),
        "data": check_data(ours, corpus_fingerprint(), corpus.counter, vocabulary),
        "learning_curves": {
            "ours": curve_summary(history),
            "ours_per_step": [{key: row[key] for key in ("step", "train_perplexity", "valid_perplexity",
                                                         "learning_rate_reduced")} for row in history],
            "book": {name: curve_summary(printed_curve(name)) for name in book_models},
        },
        "story": story_part(run, config, vocabulary, history, corpus_index, book_model),
    }
    report["heldout"], outdated = read_heldout(run, report["story"]["article_sample"]["checkpoint"])
    notes += [outdated] if outdated else []
    return report


# ---------------------------------------------------------------- figures
def plot_measures(path, story, run_label):
    """One panel per measure: the book's stories (grey) and their range, the article's sample (star),
    this run's stories (blue) and story.txt (diamond)."""
    plt = pyplot()
    names = list(text_metrics.MEASURES)
    figure, panels = plt.subplots(2, 4, figsize=(13, 7))
    for axes, name in zip(panels.flat, names):
        book = [row["measures"][name] for row in story["book_stories"] if row["measures"][name] is not None]
        ours = [row["measures"][name] for row in story["our_stories"] if row["measures"][name] is not None]
        span = story["book_range"][name]
        if span:
            axes.axhspan(span[0], span[1], color="tab:green", alpha=0.15)
        axes.plot([0] * len(book), book, "o", color="grey", alpha=0.6)
        axes.plot([1] * len(ours), ours, "o", color="tab:blue", alpha=0.6)
        sample = story["article_sample"]["measures"][name]
        if sample is not None:
            axes.plot([0], [sample], "*", color="tab:red", markersize=12)
        if story["story_txt"] and story["story_txt"]["measures"][name] is not None:
            axes.plot([1], [story["story_txt"]["measures"][name]], "D", color="tab:orange", markersize=8)
        axes.set_xlim(-0.6, 1.6)
        axes.set_xticks([0, 1], ["book", "this run"])
        title, unit = text_metrics.MEASURE_AXES[name]
        axes.set_title(textwrap.fill(title, 26), fontsize=10)
        axes.set_ylabel(unit, fontsize=9)
    legend = panels.flat[-1]
    legend.axis("off")
    for style, color, label in (("o", "grey", f"book's stories, step {BOOK_STORIES_FROM_STEP}+"),
                                ("*", "tab:red", "article's sample"),
                                ("o", "tab:blue", f"{run_label}: stories"), ("D", "tab:orange", "story.txt")):
        legend.plot([], [], style, color=color, label=label)
    legend.fill_between([], [], color="tab:green", alpha=0.15, label="range of the book's stories")
    legend.legend(loc="center", fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)


# ---------------------------------------------------------------- report.md
def _number(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _curve_row(label, summary):
    reductions = ", ".join(map(str, summary["reductions_after_steps"])) or "none"
    return (f"| {label} | {summary['first_valid']:.2f} | {summary['best_valid']:.2f} (step {summary['best_step']}) "
            f"| {summary['last_valid']:.2f} | {reductions} | {summary['steps']} |")


def run_markdown(report, figures, level):
    """The three parts for one run; `level` is the heading depth of the parts."""
    h = "#" * level
    data, curves, story = report["data"], report["learning_curves"], report["story"]
    lines = [f"Run `{report['run']}`: recipe {report['recipe']} ({report['cell']}), seed {report['seed']}, "
             f"{report['steps']} of {report['num_steps']} steps."]
    lines += [f"Made on: {report['environment']}."]
    lines += [f"Note: {note}." for note in report["notes"]]
    lines += ["", f"{h} 1. Data: {data['verdict']}", "",
              "The stories the run read, against what the book printed while reading its files "
              "(`golden/book_ch8_corpus_fingerprint.json`).", "",
              "| what the book printed | result | detail |", "|---|---|---|"]
    for key, field in data["fields"].items():
        listed = field["differences"][:MAX_LISTED]
        more = len(field["differences"]) - len(listed)
        detail = "; ".join(listed) + (f"; and {more} more (report.json)" if more else "") or field["note"]
        lines.append(f"| {key} | {field['status']} | {detail.replace('|', '/')} |")
    if data["verdict"] == TIES:
        lines += ["", "Ties: the book ran Python 3.5, whose dict order was randomised, so `Counter.most_common()` "
                      "ordered bigrams of equal count arbitrarily. Each of its 15 least common bigrams has the "
                      "printed count here, and each printed id lies among our ids of the bigrams with its count."]

    book_labels = {name: PRINTED_RUNS[name] for name in curves["book"]}
    lines += ["", f"{h} 2. Learning curves", "", f"![train and valid perplexity]({figures['curves']})", "",
              "| | first valid | best valid | last valid | learning rate halved after steps | steps |",
              "|---|---|---|---|---|---|", _curve_row("this run", curves["ours"])]
    lines += [_curve_row(book_labels[name], summary) for name, summary in curves["book"].items()]
    lines += ["", f"Held-out stories {HELDOUT_TEXT} (the site's stories the book never read): "
                  f"{heldout_text(report.get('heldout'))}."]

    sample = story["article_sample"]
    book_label = book_labels[story["book_model"]]
    count_book = len(story["book_stories"])
    count_ours = len(story["our_stories"])
    lines += ["", f"{h} 3. The story", "", f"![measures of the stories]({figures['measures']})", "",
              f"Every text is measured against the run's training stories by the same code "
              f"(`reproduce/text_metrics.py`). Verdict: is this run's median inside the range spanned by the "
              f"{count_book} stories the {book_label} printed from step {BOOK_STORIES_FROM_STEP} on?", "",
              f"| measure | {book_label}, steps {BOOK_STORIES_FROM_STEP}+: range | article's sample "
              f"| this run, steps {story['our_stories_from_step']}+: median | inside the range | verdict "
              + ("| story.txt | verdict |" if story["story_txt"] else "|"),
              "|---|---|---|---|---|---|" + ("---|---|" if story["story_txt"] else "")]
    for name, description in text_metrics.MEASURES.items():
        span = story["book_range"][name]
        span_text = f"{_number(span[0])} - {_number(span[1])}" if span else "n/a"
        row = (f"| {description} | {span_text} | {_number(sample['measures'][name])} "
               f"| {_number(story['our_median'][name])} | {story['our_inside'][name]} of {count_ours} "
               f"| **{story['verdicts'][name]}** |")
        if story["story_txt"]:
            row += f" {_number(story['story_txt']['measures'][name])} | {story['story_txt']['verdicts'][name]} |"
        lines.append(row)
    phases = sample["phases"]
    valid = sample["checkpoint_valid_perplexity"]
    lines += ["", f"Perplexity of the article's sample (`golden/book_ch8_lstm_sample.txt`) under this run's model "
                  f"(`{sample['checkpoint']}`, fed through the valid subgraph from a zero state): "
                  f"**{sample['perplexity']:.2f}**, beside that checkpoint's valid perplexity "
                  f"{_number(valid, 2)} (the book's best valid perplexity: 18.26).",
              "",
              "How the sample is read: its line breaks are the article's layout, so each becomes one space; "
              "where the book's bigrams started is unknown, so it is cut into bigrams from its first character "
              f"(perplexity {phases[0]['perplexity']:.2f}, {phases[0]['unk_bigrams']} of {phases[0]['bigrams']} "
              f"bigrams UNK) and from its second ({phases[1]['perplexity']:.2f}, {phases[1]['unk_bigrams']} of "
              f"{phases[1]['bigrams']} UNK), and the lower is reported."]
    return lines


def comparison_markdown(reports, figure):
    lines = ["## Valid perplexity of every run beside the book's", "", f"![valid perplexity]({figure})", "",
             "| model | run | best valid | last valid | steps |", "|---|---|---|---|---|"]
    for name, label in PRINTED_RUNS.items():
        summary = curve_summary(printed_curve(name))
        lines.append(f"| {label} | printed by the book | {summary['best_valid']:.2f} (step {summary['best_step']}) "
                     f"| {summary['last_valid']:.2f} | {summary['steps']} |")
    for report in reports:
        summary = report["learning_curves"]["ours"]
        lines.append(f"| {report['recipe']} ({report['cell']}) | `{report['name']}` | {summary['best_valid']:.2f} "
                     f"(step {summary['best_step']}) | {summary['last_valid']:.2f} | {summary['steps']} |")
    lines += ["", "No peephole run was printed by the book."]
    return lines


# ---------------------------------------------------------------- the command
def _output_folder(run_paths, out_dir):
    out = Path(out_dir) if out_dir else Path(run_paths[0])
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file is in the way; give a folder", exit_code=2)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        meaning, advice = disk_failure(e)
        raise UserError(f"--out {out}: cannot create this folder ({meaning}); {advice}") from e
    return out


def _summary_lines(report):
    ours = report["learning_curves"]["ours"]
    book = report["learning_curves"]["book"][report["story"]["book_model"]]
    verdicts = list(report["story"]["verdicts"].values())
    sample = report["story"]["article_sample"]
    return [f"{report['run']} ({report['recipe']}, {report['steps']} steps):",
            f"  data: {report['data']['verdict']}",
            f"  valid perplexity: best {ours['best_valid']:.2f} (step {ours['best_step']}), last "
            f"{ours['last_valid']:.2f}; the book's: best {book['best_valid']:.2f} (step {book['best_step']}), "
            f"last {book['last_valid']:.2f}",
            f"  story: {verdicts.count('inside')} of {len(verdicts)} measures inside the book's range; "
            f"the article's sample has perplexity {sample['perplexity']:.2f} under this model",
            f"  held-out stories: {heldout_text(report.get('heldout'))}"]


def heldout_text(heldout):
    """The held-out figure of a report in words: `perplexity 21.79 on 109 stories (101-209), ...`."""
    if heldout is None:
        return f"not measured (no current {HELDOUT_FILE} in the run folder; the main job writes it)"
    missing = f"; not scored, missing: {ranges_text(heldout['missing'])}" if heldout["missing"] else ""
    return describe(heldout) + missing


def compare_runs(run_dirs, out_dir=None):
    """Compare one or several runs with the book; write report.md, report.json and figures; return the report."""
    run_paths = [Path(d) for d in run_dirs]
    if not run_paths:
        raise UserError("compare needs at least one --run DIR", exit_code=2)
    runs = [RunDir.open(path) for path in run_paths]
    configs = [read_book_config(run, word_runs=True) for run in runs]
    if any(config.recipe in WORD_RECIPES for config in configs):
        if len(run_paths) > 1:
            raise UserError(f"compare reads one word run at a time ({', '.join(map(str, run_paths))} given): "
                            "give one --run DIR for a run of " + ", ".join(WORD_RECIPES), exit_code=2)
        return compare_word_run(runs[0], configs[0], out_dir)
    for path in run_paths:
        read_book_run(RunDir.open(path))             # every folder checked before any work
    out = _output_folder(run_paths, out_dir)
    several = len(run_paths) > 1
    cache = {}
    reports = [compare_run(path, cache) for path in run_paths]

    lines, figures_written = [], []
    if several:
        lines += [f"# Comparison of {len(reports)} runs with the book", ""]
        plot_perplexity(out / "comparison.png",
                        [(f"{r['recipe']} ({r['name']})", r["learning_curves"]["ours_per_step"]) for r in reports]
                        + [(printed_label(name), printed_curve(name)) for name in PRINTED_RUNS],
                        "Valid perplexity per step", with_train=False)
        figures_written.append("comparison.png")
        lines += comparison_markdown(reports, "comparison.png")
    for number, report in enumerate(reports, start=1):
        prefix = f"run{number}-" if several else ""
        figures = {"curves": f"{prefix}curves.png", "measures": f"{prefix}story_measures.png"}
        book_models = report["learning_curves"]["book"]
        plot_perplexity(out / figures["curves"],
                        [("this run", report["learning_curves"]["ours_per_step"])]
                        + [(printed_label(name), printed_curve(name)) for name in book_models],
                        f"{report['name']} ({report['recipe']}) beside the book", with_train=True)
        plot_measures(out / figures["measures"], report["story"], report["name"])
        report["figures"] = figures
        figures_written += figures.values()
        if several:
            lines += ["", f"## Run {number}: {report['name']}", ""] + run_markdown(report, figures, level=3)
        else:
            lines += [f"# {report['name']} compared with the book", ""] + run_markdown(report, figures, level=2)

    result = {"comparison": {"figure": "comparison.png", "runs": [r["run"] for r in reports]}, "runs": reports} \
        if several else reports[0]
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_json(out / "report.json", result)
    for report in reports:
        print("\n".join(_summary_lines(report)))
    print(f"Report: {out / 'report.md'} (and report.json, {', '.join(figures_written)})")
    return result


# ---------------------------------------------------------------- a word run
def compare_word_run(run, config, out_dir=None):
    """A word run (a RunDir and its config) beside its notebook's printed run at the steps both have:
    book_comparison.csv/.png (as `train` writes them when it finishes), report.md and report.json into --out
    (default: the run folder), a summary printed. Works on an unfinished run too (its newest complete step)."""
    rows = load_history(run, "rows")
    out = _output_folder([run.path], out_dir)
    both = [row for row in compare_with_book(out, rows, config) if row["book_valid_perplexity"] != ""]
    compared = {row["step"] for row in both}
    sides = {"ours": [row for row in rows if row["step"] in compared],
             "book": [row for row in printed_word_steps(config.printed_run) if row["step"] in compared]}
    curves = {who: dict(curve_summary(side), last_train=side[-1]["train_perplexity"]) for who, side in sides.items()}
    apart = [100 * (ours["valid_perplexity"] / book["valid_perplexity"] - 1) for ours, book in zip(*sides.values())]
    printed = PRINTED_WORD_RUNS[config.printed_run]
    report = {"run": str(run.path), "name": run.path.name, "recipe": config.recipe, "printed_run": printed,
              "steps": len(rows), "steps_compared": len(both),
              "same_documents": sum(int(row["same_documents"]) for row in both), "curves": curves,
              "valid_apart_percent": {"median": statistics.median(apart), "min": min(apart), "max": max(apart)},
              "environment": provenance.describe(provenance.load(run.path)), "per_step": both}
    summary = _word_summary_lines(report)
    lines = [f"# {report['name']} compared with the {printed}'s printed run", "",
             *("- " + line.strip() for line in summary[1:]), "",
             f"Made on: {report['environment']}.", "", "![both curves](book_comparison.png)", "",
             "| step | train perplexity | the book's | valid perplexity | the book's | the book's documents |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {row['step']} | {row['train_perplexity']:.2f} | {row['book_train_perplexity']:.2f} | "
              f"{row['valid_perplexity']:.2f} | {row['book_valid_perplexity']:.2f} | "
              f"{'yes' if row['same_documents'] else 'no'} |" for row in both]
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_json(out / "report.json", report)
    print("\n".join(summary))
    print(f"Report: {out / 'report.md'} (and report.json, book_comparison.csv, book_comparison.png)")
    return report


def _word_summary_lines(report):
    ours, book, apart = report["curves"]["ours"], report["curves"]["book"], report["valid_apart_percent"]
    steps = f"{report['steps']} step" + ("s" if report["steps"] != 1 else "")
    return [f"{report['run']} ({report['recipe']}, {steps}) beside the {report['printed_run']}'s "
            "printed run:",
            f"  steps both have: {report['steps_compared']}, trained on the book's documents: "
            f"{report['same_documents']}" + ("" if report["same_documents"] == report["steps_compared"] else
                                             " (`train --doc-order book` trains on them)"),
            f"  valid perplexity over them: best {ours['best_valid']:.2f} (step {ours['best_step']}), last "
            f"{ours['last_valid']:.2f}; the book's: best {book['best_valid']:.2f} (step {book['best_step']}), last "
            f"{book['last_valid']:.2f}",
            f"  train perplexity at the last of them: {ours['last_train']:.2f}; the book's: {book['last_train']:.2f}",
            f"  valid perplexity against the book's, per step: median {apart['median']:+.1f} % "
            f"({apart['min']:+.1f} % to {apart['max']:+.1f} %)"]
