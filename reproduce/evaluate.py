"""Score a checkpoint on story files: bigrams, UNK share and perplexity per story and pooled.

`python reproduce/main.py evaluate --checkpoint RUN --stories-dir DIR [--files 101-209]` reads each story
with the project's reader and the run's vocabulary, feeds it from a zero state and carries the state
through the story, as validation does (`train.perplexity_of`), and takes the book's perplexity: exp of
the mean of -log(p + 1e-10) over the story's bigrams after its first. The steps run in numpy on the
restored weights (`numpy_steps.py`), all stories side by side, so a hundred stories take seconds.
Writes `evaluate-<name>.csv` and `evaluate-<name>.png` (perplexity per story, the checkpoint's valid
perplexity marked) into the run folder and prints one summary line. A run of a word recipe (book-words,
book-words-deep) is scored the same way on the stories read as words, stepping its graph in the session.
"""
import csv
import hashlib
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from threadpoolctl import threadpool_limits

from reproduce.argtypes import story_numbers
from reproduce.data import SITE_STORIES, read_story, story_name, to_bigrams, to_ids
from reproduce.errors import UserError
from reproduce.files import check_writable, pyplot, save_figure, write_csv
from reproduce.model import BookModel
from reproduce.numpy_steps import NumpyModel
from reproduce.recipes import BOOK_RECIPES, RECIPES, WORD_RECIPES, read_book_config
from reproduce.rundir import RunDir, checkpoint_step
from reproduce.session import session_config
from reproduce.word_runs import SessionSteps
from reproduce.words import read_words

COLUMNS = ["story", "bigrams", "unk_bigrams", "unk_share", "predicted", "perplexity"]
STORY_FILE = re.compile(r"(\d{3})\.txt")
CHUNK_ROWS = 8192                     # rows of the output layer computed at once
DEFAULT_NAME_CHARS = 100              # a default NAME longer than this is shortened (a file name holds 255 bytes)


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder of a book or word recipe (its best checkpoint) or a checkpoint such as "
                             "RUN/ckpt/model-12")
    parser.add_argument("--stories-dir", required=True, help="the folder holding the stories (001.txt, ...)")
    parser.add_argument("--files", type=story_numbers, metavar="RANGES",
                        help="which stories: 101-209, or 7,12,30-40 (default: every NNN.txt in the folder)")
    parser.add_argument("--name", help="names the output files evaluate-NAME.csv/.png (default: the story ranges)")


def run(args):
    evaluate(args.checkpoint, args.stories_dir, numbers=args.files, name=args.name)


# ---------------------------------------------------------------- which stories
def ranges_text(numbers):
    """[7, 12, 30, 31, ..., 40] -> '7,12,30-40' (the syntax of --files)."""
    parts, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ",".join(parts)


def story_paths(stories_dir, numbers=None, warn=None):
    """The files `NNN.txt` of `numbers` in `stories_dir` (default: those of every story number of the site,
    1 ... 209, there), or a one-line error. One rule with or without --files: a story is one of the site's
    numbers (a file named 000.txt or 999.txt is left out, with a warning line naming it), and a name that
    exists but is not a regular file (a FIFO, a folder) is refused by the reader, which says what it is."""
    folder = Path(stories_dir)
    if not folder.is_dir():
        raise UserError(f"--stories-dir {folder}: no such folder; give the folder holding 001.txt, 002.txt, ...")
    if numbers is None:
        named = sorted(p for p in folder.iterdir() if STORY_FILE.fullmatch(p.name))
        outside = [p.name for p in named if not 1 <= int(p.name[:3]) <= SITE_STORIES]
        if outside:
            (warn or _warn)(f"warning: left out {', '.join(outside)}: not a story number of the site "
                            f"(1 ... {SITE_STORIES})")
        paths = [p for p in named if p.name not in outside]
        if not paths:
            raise UserError(f"{folder}: no story files (001.txt, 002.txt, ... {story_name(SITE_STORIES)}) in this "
                            f"folder; download them with `python reproduce/main.py download --stories-dir {folder}`")
        return paths
    paths = [folder / story_name(n) for n in numbers]
    missing = [p.name for p in paths if not os.path.lexists(p)]
    if missing:
        raise UserError(f"{folder}: {len(missing)} of the {len(paths)} stories asked for are missing (first: "
                        f"{missing[0]}); run `python reproduce/main.py download --stories-dir {folder} --files "
                        f"{ranges_text(numbers)}` or ask for fewer with --files")
    return paths


def _warn(line):
    print(line, file=sys.stderr)


def output_name(name, numbers):
    """The NAME of evaluate-NAME.csv/.png: `name`, checked, else the story ranges (shortened when long)."""
    if name is None:
        name = ranges_text(numbers).replace(",", "_")
        if len(name) > DEFAULT_NAME_CHARS:          # many scattered stories: first-last, count and a digest
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            name = f"{numbers[0]}-{numbers[-1]}_{len(numbers)}-stories_{digest}"
    if not re.fullmatch(r"[\w.-]+", name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' or '-' (it names evaluate-NAME.csv)",
                        exit_code=2)
    return name


# ---------------------------------------------------------------- the run
class ScoredRun:
    """A run whose checkpoints `evaluate` scores: a book recipe's (the stories read as bigrams, its restored
    weights stepped in numpy) or a word recipe's (the stories read as words, its graph stepped in a session).
    A cell comparison of the classics, or a run of another recipe, is a one-line error naming `reader`."""

    def __init__(self, run, reader):
        if (run.path / "comparison.json").is_file():
            raise UserError(f"{run.path} is a cell comparison of the classics, not a book run: {reader} scores the "
                            f"book's bigram and word models ({', '.join(BOOK_RECIPES + WORD_RECIPES)}); each cell's "
                            "validation loss is in its metrics.csv and cell_comparison.csv", exit_code=2)
        self.run = run
        self.config = read_book_config(run, reader, word_runs=True)
        self.word_recipe = RECIPES[self.config.recipe] if self.config.recipe in WORD_RECIPES else None
        self.unit = "words" if self.word_recipe else "bigrams"
        self.vocabulary = run.vocab({self.unit: list})[self.unit]

    def story_ids(self, paths):
        """Each story of `paths` as ids of the run's vocabulary, read as the run reads its stories."""
        return story_ids(paths, self.vocabulary, read_words if self.word_recipe else to_bigrams, self.unit)

    def scores(self, prefixes, stories, names, say=True):
        """(prefix restored, score_stories rows, seconds) of each checkpoint prefix (None: the best one) in turn,
        as it is scored; with `say`, one line on stderr names each checkpoint restored."""
        if self.word_recipe:
            return word_run_scores(self.run, self.word_recipe, self.config, self.vocabulary, prefixes, stories,
                                   names, say)
        return ((prefix, *timed_scores(steps, stories, names))
                for prefix, steps in checkpoint_steps(self.run, self.config, self.vocabulary, prefixes, say))


def checkpoint_step_and_valid(run, prefix):
    """(step, valid perplexity) of a checkpoint `.../model-<step>`, from the run's metrics.csv (None if absent)."""
    step = checkpoint_step(prefix)
    try:
        with open(run.path / "metrics.csv", newline="") as f:
            rows = {int(row["step"]): float(row["valid_perplexity"]) for row in csv.DictReader(f)}
    except (OSError, ValueError, KeyError, TypeError):
        rows = {}
    return step, rows.get(step)


# ---------------------------------------------------------------- scoring
def story_losses(steps, stories):
    """Per story: the sum of -log(p + 1e-10) of each bigram after the first, and how many there are.

    `steps`: a numpy_steps.NumpyModel; `stories`: id arrays. Every story starts from a zero state and carries
    it to its end, as `train.perplexity_of` feeds the valid subgraph; the stories step side by side, longest
    first, so the rows still running are always the first ones.
    """
    predicted = np.array([max(len(s) - 1, 0) for s in stories])
    order = np.argsort(-predicted, kind="stable")
    longest = int(predicted[order[0]]) if len(stories) else 0
    inputs = np.zeros([longest, len(stories)], np.int64)
    labels = np.zeros([longest, len(stories)], np.int64)
    for column, k in enumerate(order):
        inputs[:predicted[k], column] = stories[k][:-1]
        labels[:predicted[k], column] = stories[k][1:]
    running = np.arange(longest)[:, None] < predicted[order][None, :]       # [step, column]
    rows_per_step = running.sum(axis=1)
    outputs = np.empty([int(predicted.sum()), steps.num_nodes], np.float32)
    states, filled = steps.zero_states(len(stories)), 0
    for t, rows in enumerate(rows_per_step):
        output, states = steps.step(inputs[t, :rows], tuple(s[:rows] for s in states))
        outputs[filled:filled + rows] = output
        filled += rows
    flat_labels = labels[running]                  # row-major: step by step, the running columns in order
    owners = np.broadcast_to(order[None, :], running.shape)[running]
    nll = np.empty(len(outputs), np.float64)
    for start in range(0, len(outputs), CHUNK_ROWS):
        chunk = slice(start, start + CHUNK_ROWS)
        p = steps.probabilities(outputs[chunk])[np.arange(len(outputs[chunk])), flat_labels[chunk]]
        nll[chunk] = -np.log(p + 1e-10)            # the book's perplexity term, in float32 like the graph
    return np.bincount(owners, weights=nll, minlength=len(stories)), predicted


def perplexity(nll_sum, predicted):
    return math.exp(nll_sum / predicted) if predicted else float("nan")


def score_stories(steps, stories, names):
    """Rows of COLUMNS, one per story and a last one pooling all ('all')."""
    nll_sums, predicted = story_losses(steps, stories)
    rows = []
    for name, ids, nll_sum, count in zip(names, stories, nll_sums, predicted):
        unk = int(np.sum(ids == 0))
        rows.append({"story": name, "bigrams": len(ids), "unk_bigrams": unk, "unk_share": unk / max(len(ids), 1),
                     "predicted": int(count), "perplexity": perplexity(nll_sum, count)})
    bigrams = sum(row["bigrams"] for row in rows)
    unk = sum(row["unk_bigrams"] for row in rows)
    rows.append({"story": "all", "bigrams": bigrams, "unk_bigrams": unk, "unk_share": unk / max(bigrams, 1),
                 "predicted": int(predicted.sum()), "perplexity": perplexity(nll_sums.sum(), predicted.sum())})
    return rows


def plot_story_perplexity(path, rows, valid, step, title):
    plt = pyplot()
    stories, pooled = rows[:-1], rows[-1]
    numbers = [int(STORY_FILE.fullmatch(row["story"])[1]) for row in stories]
    figure, axes = plt.subplots(figsize=(9, 5))
    axes.bar(numbers, [row["perplexity"] for row in stories], width=0.8, color="tab:blue",
             label="each story scored here")
    axes.axhline(pooled["perplexity"], color="tab:orange", linestyle="--",
                 label=f"pooled: every bigram of the {len(stories)} stories scored here: {pooled['perplexity']:.2f}")
    if valid is not None:
        axes.axhline(valid, color="black", label=f"valid: the run's own validation documents, at the checkpoint "
                                                 f"(step {step}): {valid:.2f}")
    axes.set_xlabel("story (file number)")
    axes.set_ylabel("perplexity")
    axes.set_title(title, fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15))       # below, clear of the bars
    figure.tight_layout()
    save_figure(figure, path)


def story_ids(paths, vocabulary, tokens=to_bigrams, unit="bigrams"):
    """Each story as ids of the run's vocabulary (`tokens`: how a story's text is cut: bigrams, or words); a story
    too short to score is a one-line error."""
    dictionary = {bigram: i for i, bigram in enumerate(vocabulary)}
    stories = [to_ids(tokens(read_story(p)), dictionary) for p in paths]
    for path, ids in zip(paths, stories):
        if len(ids) < 2:
            raise UserError(f"{path}: too short to score (fewer than 2 {unit}); leave it out with --files")
    return stories


def checkpoint_steps(run, config, vocabulary, prefixes, say=True):
    """[(prefix restored, numpy_steps.NumpyModel)] of each checkpoint prefix of `run` (None: the best one)."""
    model = BookModel(config, len(vocabulary))
    restored = []
    with tf.compat.v1.Session(graph=model.graph, config=session_config()) as session:
        for prefix in prefixes:
            prefix = run.restore_for_reading(session, model.saver, model.saved_variables, prefix, say=say)
            restored.append((prefix, NumpyModel.from_session(session, model.cell, model.w, model.b)))
    return restored


def word_run_scores(run, recipe, config, vocabulary, prefixes, stories, names, say=True):
    """(prefix restored, score_stories rows, seconds) of each checkpoint prefix of a word recipe's run in turn:
    its graph steps in the session (word_runs.SessionSteps), every story side by side, the state carried."""
    model = recipe.build(config, len(vocabulary))
    with tf.compat.v1.Session(graph=model.graph, config=session_config()) as session:
        with model.graph.as_default():
            variables = tf.compat.v1.global_variables()
            saver = tf.compat.v1.train.Saver(variables)
        steps = SessionSteps(session, model)
        for prefix in prefixes:
            prefix = run.restore_for_reading(session, saver, variables, prefix, say=say)
            yield (prefix, *timed_scores(steps, stories, names))


def timed_scores(steps, stories, names):
    """(score_stories rows, seconds taken)."""
    started = time.monotonic()
    # One BLAS thread: measured on 2 cores, threaded products of this size run 3-15x slower than one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        rows = score_stories(steps, stories, names)
    return rows, time.monotonic() - started


def evaluate(checkpoint, stories_dir, numbers=None, name=None, log=print):
    """Score the checkpoint on the stories; write evaluate-<name>.csv and .png into the run folder.

    Returns {"rows", "csv", "figure", "step", "valid_perplexity", "seconds"}.
    """
    run, prefix = RunDir.find(checkpoint)
    scored = ScoredRun(run, "evaluate")
    config, unit = scored.config, scored.unit
    paths = story_paths(stories_dir, numbers)
    numbers = [int(STORY_FILE.fullmatch(p.name)[1]) for p in paths]
    name = output_name(name, numbers)
    check_writable(run.path, [f"evaluate-{name}.csv", f"evaluate-{name}.png"])     # before the work, not after
    stories = scored.story_ids(paths)
    if Path(stories_dir).resolve() == Path(config.stories_dir).resolve():
        seen = [n for n in numbers if n <= config.num_files]
        if seen:
            print(f"warning: {len(seen)} of these stories ({ranges_text(seen)}) are among the run's training "
                  "stories", file=sys.stderr)

    [(prefix, rows, seconds)] = scored.scores([prefix], stories, [p.name for p in paths])

    step, valid = checkpoint_step_and_valid(run, prefix)
    csv_path, figure_path = run.path / f"evaluate-{name}.csv", run.path / f"evaluate-{name}.png"
    write_csv(csv_path, COLUMNS, [{**row, "unk_share": f"{row['unk_share']:.5f}",
                                   "perplexity": f"{row['perplexity']:.4f}"} for row in rows])
    plot_story_perplexity(figure_path, rows, valid, step,
                          f"{run.path.name} ({config.recipe}, step {step}) on stories {ranges_text(numbers)}")
    pooled = rows[-1]
    per_story = [row["perplexity"] for row in rows[:-1] if not math.isnan(row["perplexity"])]
    valid_text = f"valid {valid:.2f}" if valid is not None else "valid perplexity unknown"
    log(f"{run.path.name} (step {step}, {valid_text}) on {len(paths)} stories ({ranges_text(numbers)}): "
        f"perplexity {pooled['perplexity']:.2f} over {pooled['bigrams']:,} {unit} "
        f"(per story {min(per_story):.2f}-{max(per_story):.2f}), UNK {100 * pooled['unk_share']:.2f} %, "
        f"{seconds:.1f} s -> {csv_path}, {figure_path.name}")
    return {"rows": rows, "csv": csv_path, "figure": figure_path, "step": step, "valid_perplexity": valid,
            "seconds": seconds}
