"""Many seeds of one book or word recipe, each an ordinary run folder, and a verdict on the book's printed run.

    python reproduce/main.py study --recipe book-notebook --seeds 0-7 [--doc-order book] [train options]
    python reproduce/main.py study --recipe book-words-deep --seeds 0-7 --doc-order book --num-steps 26
    python reproduce/main.py study ... --print-commands       # the seeds' `train` commands, for any scheduler
    python reproduce/main.py study --report-only DIR          # the report from whatever seed folders exist
    python reproduce/main.py study ... --export docs/NAME     # after the report: the finished seeds, light
    python reproduce/main.py study --compare STUDY STUDY ... --out DIR   # recipes side by side, on bands

The study folder (default `checkpoints/study-<recipe>[-<option>-<value>...]`, named by the command, so
the same command finds it again) holds `study.json`, one run folder `seed-<k>/` per seed (generate and
compare work on each), and the report (study_report.py): `report.md`, `report.json`, `band.png`, and for a
book recipe `story_measures.png` (the book printed bigram stories). Running the same command again resumes
unfinished seeds and skips finished ones; Ctrl-C (or SIGTERM) stops every seed at its last checkpoint. A word
recipe's seeds train the steps they started with: another --num-steps is refused before any seed trains (a new
--study-dir starts them afresh). With --embeddings book and no ./embeddings.npy, the study fetches the book's
file once before any seed starts (the seeds, started in the same folder, read it there).

The study's train options are the recipe's (study_report.study_fields): one the recipe does not read is
refused in one line. A finished seed gets `seed-<k>/summary.json`: its recipe, seed and options, and its
`comparison` (history, environment, the held-out perplexity of its best and last checkpoint on the stories
101-209 found in its --stories-dir, and for a book recipe the story measures), all the report reads of it.
A light seed folder (LIGHT_FILES, no checkpoints) counts as finished: the report reads its summary, the study
skips it. `--export DEST` writes one light folder per finished seed into DEST and the report of those seeds,
small enough for git: copied back as a study folder, the same command trains only the seeds it lacks.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from reproduce.argtypes import SEED_MAX, number_ranges
from reproduce.errors import UserError, interrupts_as_errors
from reproduce.files import TEMPORARY, copy_atomic, process_alive, write_json
from reproduce.progress import format_seconds
from reproduce.provenance import cpu
from reproduce.recipes import BOOK_RECIPES, RECIPES, WORD_RECIPES, option_type, recipe_config
from reproduce.rundir import read_json_object
from reproduce.session import available_cores
from reproduce.study_comparison import compare_studies
from reproduce.study_report import (STUDY_RECIPES, SUMMARY, check_writable, completed_steps, disk_errors, is_light,
                                    read_summary, study_fields, write_report, write_summary)
from reproduce.word_runs import BOOK_EMBEDDINGS_FILE, fetch_book_embeddings

MAIN = Path(__file__).resolve().parent / "main.py"
STEP_LINE = re.compile(r"^step (\d+)/(\d+)\s+train perplexity ([\d.]+)\s+valid perplexity ([\d.]+)")
MAX_SEEDS = 10_000                   # seeds in one study, counted before any range is expanded
# What a light seed folder keeps of a finished seed: enough for the report and for a reader, no checkpoint.
LIGHT_FILES = ("config.json", "environment.json", SUMMARY, "metrics.csv", "samples.txt", "story.txt",
               "embeddings.json", "book_comparison.csv")
# `bench` measures which study layout is faster on the machine it runs on (one process on every core, or one
# per core side by side: which wins depends on the CPU) and records it here; `study` takes it as its --jobs
# default on the same machine (CPU model, kernel flags, cores), and 1 elsewhere.
LAYOUT_RECORD = Path("checkpoints") / "study-layout.json"


def this_machine():
    model, flags = cpu()
    return {"cpu": model, "kernel_flags": flags, "cores": available_cores()}


def record_layout(jobs, iterations_per_s, record=LAYOUT_RECORD):
    """Write bench's finding: `jobs` seeds at a time is the faster study layout on the machine bench ran on."""
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, {**this_machine(), "jobs": jobs, "iterations_per_s": iterations_per_s,
                        "measured": time.strftime("%Y-%m-%d %H:%M")})


def default_jobs(record=LAYOUT_RECORD):
    """(seeds at a time, why): bench's faster layout when it was measured on the machine study runs on, else 1."""
    record = Path(record)
    if not record.exists():
        return 1, "the default; `python reproduce/main.py bench` measures which layout is faster here"
    layout = read_json_object(record, {"jobs": int, "cpu": str, "kernel_flags": list, "cores": int},
                              what="it should be bench's record of the faster study layout: delete it, run "
                                   "`python reproduce/main.py bench` again, or give --jobs")
    machine = {key: layout[key] for key in this_machine()}
    if machine != this_machine():
        return 1, f"the default: {record} was measured on another machine ({layout['cpu']}, {layout['cores']} cores)"
    return max(1, layout["jobs"]), f"the faster layout `bench` measured where this study runs, {record}"


def parse_seeds(text):
    """`0-7` or `0,3,5-9` -> sorted distinct seeds; a usage error otherwise, or for more than MAX_SEEDS seeds
    (each range's size is counted before it is expanded)."""
    parts = [re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part) for part in text.split(",")]
    size = sum(int(part[2] or part[1]) - int(part[1]) + 1 for part in parts if part)
    if size > MAX_SEEDS:
        raise UserError(f"--seeds {text!r}: {size:,} seeds; a study holds at most {MAX_SEEDS:,}: give fewer",
                        exit_code=2)
    try:
        return number_ranges(text, 0, SEED_MAX)
    except ValueError as e:
        raise UserError(f"--seeds {text!r}: {e}; give seeds as 0-7 or 0,3,5-9", exit_code=2) from None


def check_jobs(jobs, seeds):
    """--jobs: at least 1, at most the study's seeds and the cores (each seed trains on its share of them)."""
    cores = available_cores()
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: train at least one seed at a time", exit_code=2)
    if jobs > min(len(seeds), cores):
        limit = f"{len(seeds)}, the study's seeds" if len(seeds) < cores else f"{cores}, the cores here"
        raise UserError(f"--jobs {jobs}: at most {limit} (each seed trains on its share of the {cores} cores)",
                        exit_code=2)


def add_arguments(parser):
    parser.add_argument("--recipe", choices=STUDY_RECIPES, help="the recipe to study (default book-notebook)")
    parser.add_argument("--seeds", default="0-7", help=f"seeds, e.g. 0-7 (default) or 0,3,5-9; at most "
                                                        f"{MAX_SEEDS:,}")
    parser.add_argument("--study-dir", help="the study folder (default: checkpoints/study-<recipe>[-<options>])")
    parser.add_argument("--jobs", type=int, help="seeds trained at once, each on its share of the cores, at most "
                                                 "the seeds and the cores (default: the faster layout `bench` "
                                                 f"measured on the machine study runs on, recorded in "
                                                 f"{LAYOUT_RECORD}; 1 without one)")
    parser.add_argument("--print-commands", action="store_true",
                        help="print each unfinished seed's `train` command and stop (for GNU parallel, Slurm, ...)")
    parser.add_argument("--report-only", metavar="DIR", help="write the report of the study in DIR from the seed "
                                                             "folders it has, training nothing")
    parser.add_argument("--export", metavar="DEST", help="after the report, write into DEST (e.g. docs/<study>, "
                                                         "outside the study folder) a light copy of every "
                                                         "finished seed, without checkpoints, and their report")
    parser.add_argument("--compare", nargs="+", metavar="STUDY", help="compare finished studies of several recipes "
                                                                      "on bands (training nothing); needs --out")
    parser.add_argument("--out", metavar="DIR", help="with --compare: the folder for comparison.md/.json/.png")
    for name, (field, users) in study_options().items():       # typed as `train` types them
        only = "" if users == list(STUDY_RECIPES) else f"{', '.join(users)}: "
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=option_type(field),
                            choices=field.metadata.get("choices"),
                            help=f"{only}passed to each seed's train (the recipe's value when left out)")


def study_options():
    """{option: (its config field, the recipes whose study takes it)} of every study recipe's train options."""
    options = {}
    for recipe in STUDY_RECIPES:
        fields = {field.name: field for field in RECIPES[recipe].config_class.option_fields()}
        for name in study_fields(recipe):
            options.setdefault(name, (fields[name], []))[1].append(recipe)
    return options


def given_options(args, recipe):
    """{option: value} of the train options given to the study of `recipe`; one the recipe does not read is a
    one-line usage error naming it and the recipes that read it."""
    given = {name: getattr(args, name) for name in study_options() if getattr(args, name, None) is not None}
    for name in given:
        if name not in study_fields(recipe):
            users = [other for other in STUDY_RECIPES if name in study_fields(other)]
            raise UserError(f"--{name.replace('_', '-')} is not used by recipe {recipe}; leave it out (it is an "
                            f"option of {', '.join(users)})", exit_code=2)
    return given


def run(args):
    if args.compare:
        if args.report_only or args.export or args.print_commands:
            raise UserError("--compare trains and exports nothing; leave out --report-only, --export and "
                            "--print-commands", exit_code=2)
        with interrupts_as_errors("; the comparison was not finished (each file it wrote is whole): run the same "
                                  "command again"):
            return compare_studies([Path(d) for d in args.compare], Path(args.out) if args.out else None)
    if args.out:
        raise UserError("--out is the folder of --compare; give --compare STUDY STUDY ... too", exit_code=2)
    if args.export and args.print_commands:
        raise UserError("--export is not used with --print-commands, which trains nothing; leave one out",
                        exit_code=2)
    export_dir = Path(args.export) if args.export else None
    if args.report_only:
        study_dir = Path(args.report_only)
        check_writable(study_dir, "--report-only")
        if export_dir:
            check_export_folder(export_dir, study_dir)
    else:
        study_dir = train_seeds(args, export_dir)
        if study_dir is None:
            return None
    with interrupts_as_errors(f"; the report was not finished (the seed folders are whole): `study --report-only "
                              f"{study_dir}` writes it"):
        with disk_errors("the study folder", study_dir):
            report = write_report(study_dir)
    if not export_dir:
        return report
    with interrupts_as_errors(f"; the export to {export_dir} was not finished (each seed folder in it is whole): "
                              "run the same command again"):
        return export(study_dir, export_dir, report)


def train_seeds(args, export_dir):
    """Train the study's unfinished seeds (or print their commands, returning None); returns the study folder.
    `export_dir` (--export) is checked before the training, not hours after it."""
    recipe = args.recipe or "book-notebook"
    options = given_options(args, recipe)
    recipe_config(recipe, **options).check()                  # a value train refuses fails here, once
    seeds = parse_seeds(args.seeds)
    if args.jobs is not None:
        check_jobs(args.jobs, seeds)
    study_dir = Path(args.study_dir) if args.study_dir else default_study_dir(recipe, options)
    check_writable(study_dir, "--study-dir")
    commands = {seed: train_command(recipe, options, seed, study_dir / f"seed-{seed}") for seed in seeds}
    num_steps = options.get("num_steps", recipe_config(recipe).num_steps)
    if export_dir:
        check_export_folder(export_dir, study_dir)
    done = {seed: completed_steps(study_dir / f"seed-{seed}") for seed in seeds}
    unfinished = [seed for seed in seeds if done[seed] < num_steps]
    for seed in seeds:
        check_seed_summary(study_dir / f"seed-{seed}", recipe, seed, options, num_steps)
        check_word_seed_steps(study_dir / f"seed-{seed}", recipe, num_steps)
    if args.print_commands:
        for seed in unfinished:
            print(" ".join(_quote(word) for word in commands[seed]))
        return None
    starting = [seed for seed in unfinished if not (study_dir / f"seed-{seed}" / "config.json").is_file()]
    if starting:
        fetch_shared_files(recipe, options)
    with disk_errors("--study-dir", study_dir):
        study_dir.mkdir(parents=True, exist_ok=True)
        write_json(study_dir / "study.json", {"recipe": recipe, "options": options, "seeds": seeds})
    if unfinished:
        jobs, why = (args.jobs, "--jobs") if args.jobs is not None else default_jobs()
        print(f"Study {study_dir}: {recipe}, seeds {args.seeds} ({len(seeds) - len(unfinished)} finished), "
              f"{jobs} at a time ({why})")
        cache = {}                                    # the stories, read once for every seed's summary
        with interrupts_as_errors("; every seed keeps its last checkpoint: run the same study command again to "
                                  "continue"):
            Scheduler(commands, unfinished, done, num_steps, jobs,
                      on_finished=lambda seed: write_summary(study_dir / f"seed-{seed}", cache)).run()
    else:
        print(f"Study {study_dir}: every seed has finished its {num_steps} steps")
    return study_dir


def fetch_shared_files(recipe, options):
    """What every seed starting afresh would otherwise fetch itself, fetched once before any starts: a word
    recipe's --embeddings book, the book's embeddings.npy, into BOOK_EMBEDDINGS_FILE of the working folder, where
    the seeds (started here) read it. A failure is one line, and no seed trains."""
    if recipe not in WORD_RECIPES or recipe_config(recipe, **options).embeddings != "book":
        return
    path = Path(BOOK_EMBEDDINGS_FILE)
    if path.is_file():
        return
    print(f"Fetching the book's embeddings.npy into {path}, once for every seed")
    with interrupts_as_errors(f"; {path} was not fetched (no partial file is kept) and no seed has started: run the "
                              "same command again"):
        fetch_book_embeddings(path)


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


def check_word_seed_steps(run_dir, recipe, num_steps):
    """A word recipe's run trains the steps it was started with (its train refuses another --num-steps on
    resume): a seed folder of the study begun with other steps is a one-line error, before any seed trains."""
    if recipe in BOOK_RECIPES or is_light(run_dir) or not (run_dir / "config.json").is_file():
        return
    started = read_json_object(run_dir / "config.json").get("num_steps")
    if started != num_steps:
        raise UserError(f"{run_dir} was started with {started} steps, and a run of {recipe} trains only the steps "
                        f"it was started with (it cannot be extended to {num_steps}): for {num_steps} steps start a "
                        f"new study in another --study-dir, or give --num-steps {started} to finish this one",
                        exit_code=2)


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
        except BaseException:                              # Ctrl-C, SIGTERM: the caller says what stopped
            self._stop_all()
            raise
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


def check_export_folder(destination, study_dir):
    """--export DEST must be outside the study folder, writable, and hold no seed's checkpoints."""
    target, study = destination.resolve(), study_dir.resolve()
    if study in (target, *target.parents):
        where = "the study folder itself" if target == study else f"inside the study folder {study_dir}"
        raise UserError(f"--export {destination} is {where} (its seed folders would be taken for the study's); "
                        "export into another folder, e.g. docs/<study>", exit_code=2)
    check_writable(destination, "--export")
    checkpoints = next(destination.glob("seed-*/ckpt"), None)
    if checkpoints:
        raise UserError(f"--export {destination}: {checkpoints.parent} holds checkpoints (a study folder, not an "
                        "export); export into a new folder or a former export", exit_code=2)


def export(study_dir, destination, report):
    """A light copy (LIGHT_FILES, never a checkpoint) of every finished seed of the study (its `report`) in
    `destination`, each seed folder whole or not at all, then the report of the folder so made: `study
    --report-only DEST` gives it again."""
    if not report["finished_seeds"]:
        raise UserError(f"--export {destination}: no seed of {study_dir} has finished yet, and an unfinished one "
                        "continues from its checkpoints only; export once one has finished")
    with disk_errors("--export", destination):
        destination.mkdir(parents=True, exist_ok=True)
        remove_stale_seed_copies(destination)
        for seed in report["finished_seeds"]:
            export_seed(study_dir / f"seed-{seed}", destination / f"seed-{seed}")
        if (study_dir / "study.json").is_file():
            copy_atomic(study_dir / "study.json", destination / "study.json")
    left = len(report["seeds"]) - len(report["finished_seeds"])
    print(f"Exported {len(report['finished_seeds'])} finished seeds to {destination}"
          + (f" ({left} unfinished left out: they continue from their checkpoints only)" if left else ""))
    with disk_errors("--export", destination):
        return write_report(destination)


def export_seed(source, target):
    """The light copy of the seed folder `source` at `target`, made in a temporary folder beside it and renamed
    into place once complete (a former copy is replaced only then); on failure the temporary folder goes."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    former = staging.with_name(staging.name.replace(".tmp", "_former.tmp"))
    try:
        for name in LIGHT_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        if target.exists():
            os.rename(target, former)
        try:
            os.rename(staging, target)
        except BaseException:
            if former.exists():
                os.rename(former, target)
            raise
    finally:
        for leftover in (staging, former):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_stale_seed_copies(destination):
    """The temporary seed folders (`.seed-<k>.<pid>.<random>.tmp`) an export killed midway left in `destination`."""
    for path in destination.glob(".seed-*.tmp"):
        match = TEMPORARY.fullmatch(path.name)
        if match and path.is_dir() and not process_alive(int(match["pid"])):
            shutil.rmtree(path, ignore_errors=True)
