"""Many seeds of one book recipe, each an ordinary run folder, and a verdict on the book's printed run.

    python reproduce/main.py study --recipe book-notebook --seeds 0-7 [--doc-order book] [train options]
    python reproduce/main.py study ... --print-commands       # the seeds' `train` commands, for any scheduler
    python reproduce/main.py study --report-only DIR          # the report from whatever seed folders exist
    python reproduce/main.py study ... --export docs/NAME     # after the report: the finished seeds, light
    python reproduce/main.py study --compare STUDY STUDY ... --out DIR   # recipes side by side, on bands

The study folder (default `checkpoints/study-<recipe>[-<option>-<value>...]`, named by the command, so
the same command finds it again) holds `study.json`, one run folder `seed-<k>/` per seed (generate and
compare work on each), and the report: `report.md`, `report.json`, `band.png`, `story_measures.png`.
Running the same command again resumes unfinished seeds and skips finished ones; Ctrl-C (or SIGTERM)
stops every seed at its last checkpoint.

A finished seed gets `seed-<k>/summary.json`: its recipe, seed and options, and the `compare_run` dict
(history, story measures, environment), all the report reads of it. A light seed folder (LIGHT_FILES, no
checkpoints) counts as finished: the report reads its summary, the study skips it. `--export DEST` writes
one light folder per finished seed into DEST and the report of those seeds, small enough for git: copied
back as a study folder, the same command trains only the seeds it lacks.
"""
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from reproduce import text_metrics
from reproduce.argtypes import SEED_MAX, number_ranges
from reproduce.config import Config
from reproduce.recipes import BOOK_RECIPES, option_type, read_book_config, recipe_config
from reproduce.files import copy_atomic, pyplot, save_figure, write_atomic, write_json
from reproduce.rundir import RunDir, read_json_object
from reproduce.errors import UserError, interrupt_exit_code
from reproduce.progress import format_seconds
from reproduce.provenance import cpu
from reproduce.session import available_cores

MAIN = Path(__file__).resolve().parent / "main.py"
# The train options a study passes to every seed: the book loop's Config fields (the recipe, seed and
# run folder are the study's own).
TRAIN_FIELDS = ("graph", "state_variables", "doc_order", "stories_dir", "num_files", "num_steps", "docs_per_step",
                "steps_per_document", "num_nodes", "batch_size", "num_unrollings", "dropout", "chars_in_segment",
                "valid_docs")
STEP_LINE = re.compile(r"^step (\d+)/(\d+)\s+train perplexity ([\d.]+)\s+valid perplexity ([\d.]+)")
TRAIN_STEPS_RANKED = (1, 13, 26)     # the train perplexities the rank table places
SUMMARY = "summary.json"
# What a light seed folder keeps of a finished seed: enough for the report and for a reader, no checkpoint.
LIGHT_FILES = ("config.json", "environment.json", SUMMARY, "metrics.csv", "samples.txt", "story.txt")
# `bench` measures which study layout is faster on the machine it runs on (one process on every core, or one
# per core side by side: which wins depends on the CPU) and records it here; `study` takes it as its --jobs
# default on the same machine (CPU model, kernel flags, cores), and 1 elsewhere.
LAYOUT_RECORD = Path("checkpoints") / "study-layout.json"


def this_machine():
    model, flags = cpu()
    return {"cpu": model, "kernel_flags": flags, "cores": available_cores()}


def record_layout(jobs, iterations_per_s, record=LAYOUT_RECORD):
    """Write bench's finding: `jobs` seeds at a time is the faster study layout on this machine."""
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, {**this_machine(), "jobs": jobs, "iterations_per_s": iterations_per_s,
                        "measured": time.strftime("%Y-%m-%d %H:%M")})


def default_jobs(record=LAYOUT_RECORD):
    """(seeds at a time, why): bench's faster layout when it was measured on this machine, else 1."""
    record = Path(record)
    if not record.exists():
        return 1, "the default; `python reproduce/main.py bench` measures which layout is faster here"
    layout = read_json_object(record, {"jobs": int, "cpu": str, "kernel_flags": list, "cores": int},
                              what="it should be bench's record of the faster study layout: delete it, run "
                                   "`python reproduce/main.py bench` again, or give --jobs")
    machine = {key: layout[key] for key in this_machine()}
    if machine != this_machine():
        return 1, f"the default: {record} was measured on another machine ({layout['cpu']}, {layout['cores']} cores)"
    return max(1, layout["jobs"]), f"the faster layout `bench` measured on this machine, {record}"


def parse_seeds(text):
    """`0-7` or `0,3,5-9` -> sorted distinct seeds; a usage error otherwise."""
    try:
        return number_ranges(text, 0, SEED_MAX)
    except ValueError as e:
        raise UserError(f"--seeds {text!r}: {e}; give seeds as 0-7 or 0,3,5-9", exit_code=2) from None


def add_arguments(parser):
    parser.add_argument("--recipe", choices=BOOK_RECIPES, help="the book recipe to study (default book-notebook)")
    parser.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7 (default) or 0,3,5-9")
    parser.add_argument("--study-dir", help="the study folder (default: checkpoints/study-<recipe>[-<options>])")
    parser.add_argument("--jobs", type=int, help="seeds trained at once, each on its share of the cores "
                                                 "(default: the faster layout `bench` measured on this "
                                                 f"machine, recorded in {LAYOUT_RECORD}; 1 without one)")
    parser.add_argument("--print-commands", action="store_true",
                        help="print each unfinished seed's `train` command and stop (for GNU parallel, Slurm, ...)")
    parser.add_argument("--report-only", metavar="DIR", help="write the report of the study in DIR from the seed "
                                                             "folders it has, training nothing")
    parser.add_argument("--export", metavar="DEST", help="after the report, write into DEST (e.g. docs/<study>) a "
                                                         "light copy of every finished seed, without checkpoints, "
                                                         "and their report")
    parser.add_argument("--compare", nargs="+", metavar="STUDY", help="compare finished studies of several recipes "
                                                                      "on bands (training nothing); needs --out")
    parser.add_argument("--out", metavar="DIR", help="with --compare: the folder for comparison.md/.json/.png")
    fields = {field.name: field for field in Config.option_fields()}
    for name in TRAIN_FIELDS:                      # typed and checked as `train` types and checks them
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=option_type(fields[name]),
                            choices=fields[name].metadata.get("choices"),
                            help="passed to each seed's train (the recipe's value when left out)")


def run(args):
    if args.compare:
        from reproduce.study_comparison import compare_studies
        if args.report_only or args.export or args.print_commands:
            raise UserError("--compare trains and exports nothing; leave out --report-only, --export and "
                            "--print-commands", exit_code=2)
        return compare_studies([Path(d) for d in args.compare], Path(args.out) if args.out else None)
    if args.out:
        raise UserError("--out is the folder of --compare; give --compare STUDY STUDY ... too", exit_code=2)
    if args.export and args.print_commands:
        raise UserError("--export is not used with --print-commands, which trains nothing; leave one out",
                        exit_code=2)
    export_dir = Path(args.export) if args.export else None
    if args.report_only:
        study_dir = Path(args.report_only)
        if export_dir:
            check_export_folder(export_dir, study_dir)
    else:
        study_dir = train_seeds(args, export_dir)
        if study_dir is None:
            return None
    report = write_report(study_dir)
    return export(study_dir, export_dir, report) if export_dir else report


def train_seeds(args, export_dir):
    """Train the study's unfinished seeds (or print their commands, returning None); returns the study folder.
    `export_dir` (--export) is checked before the training, not hours after it."""
    recipe = args.recipe or "book-notebook"
    options = {name: getattr(args, name) for name in TRAIN_FIELDS if getattr(args, name) is not None}
    recipe_config(recipe, **options)                          # a value of the wrong kind fails here, once
    seeds = parse_seeds(args.seeds)
    study_dir = Path(args.study_dir) if args.study_dir else default_study_dir(recipe, options)
    commands = {seed: train_command(recipe, options, seed, study_dir / f"seed-{seed}") for seed in seeds}
    num_steps = options.get("num_steps", recipe_config(recipe).num_steps)
    if export_dir:
        check_export_folder(export_dir, study_dir)
    done = {seed: completed_steps(study_dir / f"seed-{seed}") for seed in seeds}
    unfinished = [seed for seed in seeds if done[seed] < num_steps]
    for seed in seeds:
        check_seed_summary(study_dir / f"seed-{seed}", recipe, seed, options, num_steps)
    if args.print_commands:
        for seed in unfinished:
            print(" ".join(_quote(word) for word in commands[seed]))
        return None
    study_dir.mkdir(parents=True, exist_ok=True)
    write_json(study_dir / "study.json", {"recipe": recipe, "options": options, "seeds": seeds})
    if unfinished:
        jobs, why = (args.jobs, "--jobs") if args.jobs is not None else default_jobs()
        if jobs < 1:
            raise UserError(f"--jobs {jobs}: train at least one seed at a time", exit_code=2)
        print(f"Study {study_dir}: {recipe}, seeds {args.seeds} ({len(seeds) - len(unfinished)} finished), "
              f"{jobs} at a time ({why})")
        cache = {}                                    # the stories, read once for every seed's summary
        Scheduler(commands, unfinished, done, num_steps, jobs,
                  on_finished=lambda seed: write_summary(study_dir / f"seed-{seed}", cache)).run()
    else:
        print(f"Study {study_dir}: every seed has finished its {num_steps} steps")
    return study_dir


def default_study_dir(recipe, options):
    """checkpoints/study-<recipe>, then each option given (sorted), so the same command names the same folder."""
    words = [f"study-{recipe}"] + [f"{name.replace('_', '-')}-{value}" for name, value in sorted(options.items())
                                   if name != "stories_dir"]
    return Path("checkpoints") / re.sub(r"[^A-Za-z0-9.\-]+", "_", "-".join(words))


def train_command(recipe, options, seed, run_dir):
    command = [sys.executable, str(MAIN), "train", "--recipe", recipe, "--seed", str(seed), "--run-dir", str(run_dir)]
    for name, value in options.items():
        command += ["--" + name.replace("_", "-"), str(value)]
    if (run_dir / "config.json").exists():
        command.append("--resume")
    return command


def _quote(word):
    return word if re.fullmatch(r"[\w./=:,+-]+", word) else "'" + word.replace("'", "'\\''") + "'"


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
    """seed-<k>/summary.json, checked; None when there is none, or when the seed has trained on past it."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    what = ("delete it: the report computes it again from the seed's checkpoints" if (run_dir / "ckpt").is_dir()
            else f"copy it again from the study's export, or delete {run_dir} to train that seed again")
    summary = read_json_object(path, {"recipe": str, "seed": int, "steps": int, "options": dict, "comparison": dict},
                               what=what)
    if (run_dir / "ckpt").is_dir() and RunDir(run_dir).steps()[:1] != [summary["steps"]]:
        return None                                # continued with more --num-steps: computed again when finished
    return summary


def write_summary(run_dir, cache):
    """Write seed-<k>/summary.json from the seed's checkpoints and stories; returns it."""
    from reproduce.compare import compare_run
    config = read_book_config(RunDir.open(run_dir))
    comparison = compare_run(run_dir, cache)
    summary = {"recipe": config.recipe, "seed": config.seed, "steps": comparison["steps"],
               "options": {name: getattr(config, name) for name in TRAIN_FIELDS}, "comparison": comparison}
    write_json(run_dir / SUMMARY, summary)
    return summary


def check_seed_summary(run_dir, recipe, seed, options, num_steps):
    """A seed folder's summary must be of this study's recipe, seed and options given (its stories may have
    been elsewhere); a light one must have all the study's steps, having no checkpoint to continue from."""
    summary = read_summary(run_dir)
    if summary is None:
        return
    if (summary["recipe"], summary["seed"]) != (recipe, seed):
        raise UserError(f"{run_dir / SUMMARY} is of seed {summary['seed']} of recipe {summary['recipe']}, not seed "
                        f"{seed} of {recipe}; choose another --study-dir", exit_code=2)
    for name, value in options.items():
        was = summary["options"].get(name)
        if name not in ("stories_dir", "num_steps") and was != value:
            raise UserError(f"--{name.replace('_', '-')} {value} contradicts {run_dir} ({name} {was} in its "
                            f"{SUMMARY}); choose another --study-dir", exit_code=2)
    if is_light(run_dir) and summary["steps"] < num_steps:
        raise UserError(f"{run_dir} is a light seed folder of {summary['steps']} steps, without the checkpoints to "
                        f"continue to {num_steps}; delete it to train that seed again, or choose another "
                        "--study-dir", exit_code=2)


class Scheduler:
    """Runs the seeds' train commands `jobs` at a time, each pinned to its share of the cores; one line per
    step with the study's ETA; on Ctrl-C or SIGTERM stops every seed at its last checkpoint."""

    def __init__(self, commands, seeds, done, num_steps, jobs, on_finished):
        self.commands, self.queue, self.done, self.num_steps = commands, list(seeds), dict(done), num_steps
        self.on_finished = on_finished          # called with each seed whose train has ended well
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.core_sets = [set(cores[k::jobs]) for k in range(jobs)] if len(cores) >= jobs else [None] * jobs
        self.running = {}                       # seed -> (process, its core set)
        self.errors = {}                        # seed -> the lines its train printed on stderr
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.steps_at_start = sum(min(d, num_steps) for d in done.values())
        self.total_steps = num_steps * len(done)
        self.failures = []

    def run(self):
        try:
            while self.queue or self.running:
                finished = self._reap()
                while self.queue and len(self.running) < len(self.core_sets):
                    self._start(self.queue.pop(0))
                for seed in finished:                      # once the next seeds are training
                    self._summarise(seed)
                time.sleep(0.2)
        except KeyboardInterrupt as interrupt:
            self._stop_all()
            raise UserError("interrupted; every seed keeps its last checkpoint: run the same study command again "
                            "to continue", exit_code=interrupt_exit_code(interrupt)) from None
        if self.failures:
            raise UserError("; ".join(self.failures))

    def _start(self, seed):
        used = [cores for _, cores in self.running.values()]
        cores = next(c for c in self.core_sets if c is None or c not in used)
        pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
        # Their own session: Ctrl-C reaches them through `_stop_all`, after which each says where it stopped.
        process = subprocess.Popen(self.commands[seed], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=pin, start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.running[seed] = process, cores
        self.errors[seed] = []
        threading.Thread(target=self._follow, args=(seed, process), daemon=True).start()
        threading.Thread(target=lambda: self.errors[seed].extend(process.stderr), daemon=True).start()

    def _follow(self, seed, process):
        for line in process.stdout:
            match = STEP_LINE.match(line)
            if not match:
                continue
            with self.lock:
                self.done[seed] = int(match[1])
                steps = sum(min(d, self.num_steps) for d in self.done.values())
                rate = (steps - self.steps_at_start) / (time.monotonic() - self.started)
                eta = format_seconds((self.total_steps - steps) / rate) if rate > 0 else "?"
                print(f"seed {seed}: step {match[1]}/{match[2]}  train {float(match[3]):.2f}  valid "
                      f"{float(match[4]):.2f}  | study {steps}/{self.total_steps} steps, ETA {eta}", flush=True)

    def _summarise(self, seed):
        try:
            self.on_finished(seed)
        except UserError as e:
            self.failures.append(f"seed {seed} finished, but its {SUMMARY} could not be written: {e}")

    def _reap(self):
        """Forget the seeds whose train has ended; returns those that ended well."""
        finished = []
        for seed, (process, _) in list(self.running.items()):
            if process.poll() is None:
                continue
            del self.running[seed]
            if process.returncode == 0:
                finished.append(seed)
            else:
                lines = [line.strip() for line in self.errors[seed] if line.strip()]
                self.failures.append(f"seed {seed} failed: {lines[-1] if lines else f'exit {process.returncode}'}")
                if process.returncode == 2:                 # a usage error is every seed's: stop here
                    self.queue.clear()
        return finished

    def _stop_all(self):
        for process, _ in self.running.values():
            if process.poll() is None:
                process.terminate()                        # train stops at its last complete checkpoint
        for process, _ in self.running.values():
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()


# ---------------------------------------------------------------- the report
def seed_folders(study_dir):
    """(seed, run folder) of every seed folder with a completed step (a light folder's count), by seed."""
    found = []
    for path in study_dir.glob("seed-*"):
        match = re.fullmatch(r"seed-(\d+)", path.name)
        if match and path.is_dir() and completed_steps(path):
            found.append((int(match[1]), path))
    return sorted(found)


def band(values):
    """median, min, max (and the 10-90 % range from 8 values on) of a list of numbers."""
    summary = {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
    if len(values) >= 8:
        summary["p10"], summary["p90"] = (float(x) for x in np.percentile(values, [10, 90]))
    return summary


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
    from reproduce.compare import curve_summary
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


def seed_comparison(run_dir, num_steps, cache):
    """The compare_run dict of one seed: from its summary.json; a finished seed without one gets it; an
    unfinished seed's is computed from its checkpoints."""
    from reproduce.compare import compare_run
    summary = read_summary(run_dir)
    if summary is None and completed_steps(run_dir) >= num_steps:
        summary = write_summary(run_dir, cache)
    return summary["comparison"] if summary else compare_run(run_dir, cache)


def write_report(study_dir):
    from reproduce.compare import BOOK_RUNS, book_curves

    folders = seed_folders(study_dir)
    if not folders:
        raise UserError(f"{study_dir}: no seed folder with a completed step (seed-<k>/); run the study first")
    config = read_book_config(RunDir.open(folders[0][1]))
    cache = {}
    comparisons = {seed: seed_comparison(path, config.num_steps, cache) for seed, path in folders}
    histories = {seed: comparison["learning_curves"]["ours_per_step"] for seed, comparison in comparisons.items()}
    book_model = "gru" if config.cell == "gru" else "lstm"
    book_curve = book_curves()[BOOK_RUNS[book_model][0]]
    book_label = BOOK_RUNS[book_model][2]
    finished = [seed for seed, history in histories.items() if history[-1]["step"] >= config.num_steps]

    steps = sorted({row["step"] for history in histories.values() for row in history})
    per_step = []
    for step in steps:
        rows = [row for history in histories.values() for row in history if row["step"] == step]
        per_step.append({"step": step, "train": band([r["train_perplexity"] for r in rows]),
                         "valid": band([r["valid_perplexity"] for r in rows])})

    seed_figures = {seed: run_figures(histories[seed]) for seed in finished}
    book_figures = run_figures(book_curve)
    ranks = {}
    for name, book_value in book_figures.items():
        values = [f[name] for f in seed_figures.values() if f[name] is not None]
        if values and book_value is not None:
            ranks[name] = place(book_value, values)

    stories = {seed: comparison["story"] for seed, comparison in comparisons.items()}
    measures = {}
    for name in text_metrics.MEASURES:
        ours = [row["measures"][name] for story in stories.values() for row in story["our_stories"]
                if row["measures"][name] is not None]
        book = [row["measures"][name] for row in next(iter(stories.values()))["book_stories"]
                if row["measures"][name] is not None]
        seed_medians = [story["our_median"][name] for story in stories.values() if story["our_median"][name] is not None]
        measures[name] = {"ours": band(ours) if ours else None, "book": band(book) if book else None,
                          "seed_medians": seed_medians, "values_ours": ours, "values_book": book}
    headline = ranks.get("best valid perplexity")
    report = {"study": str(study_dir), "recipe": config.recipe, "cell": config.cell, "seeds": [s for s, _ in folders],
              "finished_seeds": finished, "num_steps": config.num_steps, "book_run": book_label,
              "options": {name: getattr(config, name) for name in TRAIN_FIELDS},
              "verdict": headline["verdict"] if headline else "no seed has finished: no verdict yet",
              "per_step": per_step, "ranks": ranks, "steps_outside": steps_outside(per_step, book_curve),
              "figures_by_seed": {str(seed): figures for seed, figures in seed_figures.items()},
              "story_measures": measures,
              "environments": sorted({comparison["environment"] for comparison in comparisons.values()})}
    plot_band(study_dir / "band.png", per_step, book_curve,
              f"{config.recipe}: {len(folders)} seeds ({len(finished)} finished)", book_label)
    plot_story_measures(study_dir / "story_measures.png", measures, book_label)
    write_json(study_dir / "report.json", report)
    write_atomic(study_dir / "report.md", report_markdown(report))
    print(f"Verdict: {report['verdict']}")
    print(f"Report: {study_dir / 'report.md'} (and report.json, band.png, story_measures.png)")
    return report


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


def check_export_folder(destination, study_dir):
    """--export DEST must be another folder than the study's, and hold no seed's checkpoints."""
    if destination.resolve() == study_dir.resolve():
        raise UserError(f"--export {destination} is the study folder itself; export into another folder, "
                        "e.g. docs/<study>", exit_code=2)
    if destination.exists() and not destination.is_dir():
        raise UserError(f"--export {destination}: a file is in the way; give a folder", exit_code=2)
    checkpoints = next(destination.glob("seed-*/ckpt"), None)
    if checkpoints:
        raise UserError(f"--export {destination}: {checkpoints.parent} holds checkpoints (a study folder, not an "
                        "export); export into a new folder or a former export", exit_code=2)


def export(study_dir, destination, report):
    """A light copy (LIGHT_FILES, never a checkpoint) of every finished seed of the study (its `report`) in
    `destination`, then the report of the folder so made: `study --report-only DEST` gives it again."""
    if not report["finished_seeds"]:
        raise UserError(f"--export {destination}: no seed of {study_dir} has finished yet, and an unfinished one "
                        "continues from its checkpoints only; export once one has finished")
    for seed in report["finished_seeds"]:
        (destination / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
        for name in LIGHT_FILES:
            if (study_dir / f"seed-{seed}" / name).is_file():
                copy_atomic(study_dir / f"seed-{seed}" / name, destination / f"seed-{seed}" / name)
    if (study_dir / "study.json").is_file():
        copy_atomic(study_dir / "study.json", destination / "study.json")
    left = len(report["seeds"]) - len(report["finished_seeds"])
    print(f"Exported {len(report['finished_seeds'])} finished seeds to {destination}"
          + (f" ({left} unfinished left out: they continue from their checkpoints only)" if left else ""))
    return write_report(destination)


def perplexity_axes(axes, title):
    """Log-scale perplexity against step, labelled 1-2-5, as every band figure shows it."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
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
    figure, panels = plt.subplots(1, len(measures), figsize=(2.2 * len(measures), 3.8))
    for axes, (name, entry) in zip(panels, measures.items()):
        data = [entry["values_book"] or [np.nan], entry["values_ours"] or [np.nan]]
        axes.boxplot(data, widths=0.6)
        axes.set_xticks([1, 2], ["book", "seeds"])
        axes.set_title(name, fontsize=9)
    figure.suptitle(f"story measures: {book_label}'s printed stories beside every seed's stories")
    figure.tight_layout()
    save_figure(figure, path)


def report_markdown(report):
    lines = [f"# Study of `{report['recipe']}` ({report['cell']}) over {len(report['seeds'])} seeds "
             f"({len(report['finished_seeds'])} finished)", "",
             f"**Verdict: {report['verdict']}** (best valid perplexity, against the {report['book_run']}).", "",
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
    for key, entry in report["steps_outside"].items():
        listed = f" (steps {', '.join(map(str, entry['steps']))})" if entry["steps"] else ""
        lines += ["", f"The book's {key} curve is outside the seeds' range at {len(entry['steps'])} of {entry['of']} "
                      f"steps{listed}; were the book's run one more seed, {entry['expected']:.1f} would be expected."]
    lines += ["", "## Per step", "", "| step | train: median (min - max) | valid: median (min - max) |",
              "|---|---|---|"]
    for row in report["per_step"]:
        t, v = row["train"], row["valid"]
        lines.append(f"| {row['step']} | {t['median']:.2f} ({t['min']:.2f} - {t['max']:.2f}) | "
                     f"{v['median']:.2f} ({v['min']:.2f} - {v['max']:.2f}) |")
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
