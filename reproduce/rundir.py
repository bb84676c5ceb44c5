"""The run folder of every recipe: create, open, find, resume, checkpoints with the loop's state, the best one.

    <run>/config.json         {"recipe": ..., every option}: enough to rebuild the graph
    <run>/vocab.json          the id -> bigram (character, word) table, and what else the recipe's text gives
    <run>/corpus_fingerprint.json  (book recipes) what the book printed while reading its files, for the stories read
    <run>/ckpt/model-<k>.*    TensorFlow checkpoint after step k (the last `keep_last` are kept); ckpt/checkpoint
                              names the newest (relative paths)
    <run>/ckpt/state-<k>.json the loop's state after step k; written after the checkpoint, so a step
                              whose state file exists has a complete checkpoint
    <run>/best/model-<k>.*    the checkpoint with the best validation figure; best/best.json names it and holds
                              the figure, named for what it is (`valid_perplexity`, `valid_loss`)
    <run>/.lock               held (fcntl.flock) by the one process training in the folder
    <run>/metrics.csv, samples.txt, ...   written by the recipe

Every file is written to a temporary name and renamed (files.py), so a crash leaves the previous version
intact. Files read back are checked for shape and type: a damaged one is a one-line error naming the file
and the field.
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import tensorflow as tf

from reproduce import provenance
from reproduce.checkpoints import checkpoint_files, crash_point, remove_checkpoint, restore, restore_for_use
from reproduce.errors import UserError, describe_error, disk_failure, interrupts_as_errors, say_when_done
from reproduce.files import remove_stale_temporaries, write_atomic, write_json
from reproduce.session import session_config


RUNS_ROOT = Path("checkpoints")
LOCK_FILE = ".lock"
created_folders = []                # folders this process created: remove_unstarted() takes back the empty ones


def train_command(recipe, path, extra=""):
    """The command that continues the run in `path`."""
    return f"python reproduce/main.py train --recipe {recipe}{extra} --resume --run-dir {path}"


def read_json_object(path, required=None, what="this run folder is damaged"):
    """A JSON object read from `path`; `required` maps a key to the type(s) its value must have. A missing,
    unreadable or ill-shaped file is a one-line error naming the file (and the field)."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing; {what}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({describe_error(e)}); {what}") from e
    if not isinstance(value, dict):
        raise UserError(f"{path}: holds a JSON {type(value).__name__}, not an object; {what}")
    for key, kinds in (required or {}).items():
        if key not in value:
            raise UserError(f"{path}: no field {key!r}; {what}")
        if not isinstance(value[key], kinds) or (isinstance(value[key], bool) and bool not in _tuple(kinds)):
            raise UserError(f"{path}: field {key!r} is {value[key]!r}, not {_type_names(kinds)}; {what}")
    return value


def _tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _type_names(kinds):
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object",
             bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kinds))


@contextlib.contextmanager
def unstarted_folders_removed():
    """On failure, remove the run folders this process created that hold nothing but their lock: a `train`
    refused (or interrupted) before it wrote its config.json leaves nothing behind."""
    try:
        yield
    except BaseException:
        while created_folders:
            path = created_folders.pop()
            if path.is_dir() and all(p.name == LOCK_FILE for p in path.iterdir()):
                shutil.rmtree(path, ignore_errors=True)
        raise


def checkpoint_step(prefix):
    """The step of a checkpoint prefix `.../model-<step>`, None for another name."""
    step = re.fullmatch(r"model-(\d+)", Path(prefix).name)
    return int(step[1]) if step else None


class RunDir:
    """One run folder. `recipe` and `command` (what continues the run) name it in messages."""

    def __init__(self, path, command=None):
        self.path = Path(path)
        self.ckpt = self.path / "ckpt"
        self.best = self.path / "best"
        self.command = command or f"python reproduce/main.py train --resume --run-dir {self.path}"
        self.saved_step = 0             # the step of the newest complete checkpoint (save_step, restore_latest)
        self.config = None              # for training (`for_training`): the run's configuration, a dict (the
                                        # classics replace it by their typed config: classics/common.open_run)
        self.resumed = False
        self.saver = None               # the training session's Saver, set by whoever opens it
        self._lock = None
        self.environment_recorded = False   # environment.json gets this session at its first checkpoint
        self.best_figure = "perplexity"     # what best/ ranks by (lower is better); a recipe may set "loss"

    @classmethod
    def for_training(cls, recipe, run_dir, resume, config, given, extendable=(), same=None, command=None,
                     option_names=None):
        """The run folder `train` writes, locked, with its configuration in `.config` (a dict).

        A new run: `run_dir` (or checkpoints/<recipe>-<time>), with `config`. With `resume`: the run in
        `run_dir`, with the configuration it was started with. The resume rule of every recipe: an option
        given (`given`: config key -> value) equal to the run's is accepted, one that contradicts it is
        refused in one line, except the `extendable` ones (the book's --num-steps), which replace it.
        `same(key, given, was)` decides equality where `==` does not (paths); `command(path)` is the command
        that continues the run (default: `train --recipe RECIPE --resume --run-dir PATH`); `option_names` maps
        a config key to its option where they differ."""
        command = command or (lambda path: train_command(recipe, path))
        if not resume:
            run = cls.create(recipe, run_dir, command)
            run.config = dict(config)
            return run
        if not run_dir:
            raise UserError("--resume needs --run-dir: the run folder to continue", exit_code=2)
        path = Path(run_dir)
        if not path.is_dir():
            raise UserError(f"{path}: no such run folder to resume", exit_code=2)
        if not (path / "config.json").is_file():
            raise UserError(f"{path}: not a run folder (no config.json); nothing to resume", exit_code=2)
        run = cls(path, command(path))
        saved = run.read_config()
        if saved["recipe"] != recipe:
            raise UserError(f"{path} holds a run of recipe {saved['recipe']}, not {recipe}; resume it with "
                            f"--recipe {saved['recipe']}", exit_code=2)
        for key, value in given.items():
            if key in extendable:
                saved[key] = value
                continue
            was = saved.get(key)
            if not (same(key, value, was) if same else value == was):
                option = "--" + (option_names or {}).get(key, key).replace("_", "-")
                raise UserError(f"{option} {value} contradicts {path} ({key} {was} when it was started); leave "
                                "it out to resume the run as it was started", exit_code=2)
        run.lock()
        run.config, run.resumed = saved, True
        return run

    # ------------------------------------------------------------ create, open, find
    @classmethod
    def create(cls, recipe, run_dir=None, command=None):
        """A new run folder, locked: `run_dir`, which must not hold a run, or checkpoints/<recipe>-<time>, a
        folder no other run has (two runs started in the same second get -<time> and -<time>-2)."""
        if run_dir is None:
            RUNS_ROOT.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for attempt in range(1, 1000):
                path = RUNS_ROOT / (f"{recipe}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
                try:
                    path.mkdir()                # atomic: exactly one process creates each name
                    created_folders.append(path)
                    break
                except FileExistsError:
                    continue
            run = cls(path, command and command(path))
            run.lock()
            return run
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise UserError(f"--run-dir {path} is a file, not a folder; choose another --run-dir", exit_code=2)
        run = cls(path, command and command(path))
        run.refuse_if_holding_a_run()
        try:
            if not path.exists():
                created_folders.append(path)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--run-dir {path}: cannot create it ({disk_failure(e)[0]})", exit_code=2) from e
        run.lock()
        run.refuse_if_holding_a_run()      # again under the lock: another process may have started one
        return run

    def refuse_if_holding_a_run(self):
        if self.path.is_dir() and any(p.name != LOCK_FILE for p in self.path.iterdir()):
            raise UserError(f"{self.path} already holds a run; continue it with --resume or choose another "
                            "--run-dir", exit_code=2)

    @classmethod
    def open(cls, path, command=None):
        """An existing run folder (for resume, generate, compare): one with a config.json."""
        run = cls(path, command)
        if not run.path.is_dir():
            raise UserError(f"{run.path}: no such folder; give a run folder written by `train` "
                            "(checkpoints/<recipe>-<time>)")
        if not (run.path / "config.json").is_file():
            raise UserError(f"{run.path}: not a run folder (no config.json); give a folder written by `train`")
        return run

    @classmethod
    def find(cls, checkpoint):
        """`--checkpoint` is a run folder or a checkpoint prefix inside one: (RunDir, prefix or None)."""
        path = Path(checkpoint)
        if path.is_dir() or not path.parent.exists():
            return cls.open(path), None
        for parent in list(path.parents)[:3]:
            if (parent / "config.json").is_file():
                if not checkpoint_files(path):
                    raise UserError(f"{path}: no such checkpoint (expected {path.name}.index beside it)")
                return cls(parent), path
        raise UserError(f"{path}: not a run folder or a checkpoint inside one (no config.json found above it)")

    @classmethod
    def newest_unfinished(cls, recipe):
        """The newest checkpoints/<recipe>-* run that stopped before the last of its steps and that no process
        is training now, if any (None when the newest such run has finished)."""
        for path in sorted(RUNS_ROOT.glob(f"{recipe}-*"), reverse=True):
            run = cls(path)
            if not (path / "config.json").exists() or run.locked_by_another():
                continue
            steps = run.steps()
            num_steps = run.read_config().get("num_steps")
            if steps and isinstance(num_steps, int) and steps[0] >= num_steps:
                return None
            return path
        return None

    # ------------------------------------------------------------ one writer: the lock
    def lock(self):
        """Hold the folder's lock until this process ends (fcntl.flock: the kernel drops it with the process,
        so a SIGKILL leaves nothing stale); a second writer is refused in one line."""
        handle = open(self.path / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"{self.path} is being trained by process {holder}; wait for it to end or choose "
                            "another --run-dir", exit_code=2) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle
        self.remove_stale_temporaries()

    def remove_stale_temporaries(self):
        """Under the lock, remove what a killed writer left: the temporary files of dead processes
        (files.py) and TensorFlow's half-written checkpoints (`model-3_temp/`, `*.tempstate*`; no other
        process writes checkpoints here)."""
        for folder in (self.path, self.ckpt, self.best):
            if folder.is_dir():
                remove_stale_temporaries(folder)
        for folder in (self.ckpt, self.best):
            for tmp in [*folder.glob("*_temp*"), *folder.glob("*.tempstate*")]:
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)

    def locked_by_another(self):
        if self._lock is not None or not (self.path / LOCK_FILE).exists():
            return False
        with open(self.path / LOCK_FILE) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def unlock(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ------------------------------------------------------------ config.json, vocab.json, other files
    def read_config(self):
        """config.json as a dict, checked to be an object naming its recipe."""
        return read_json_object(self.path / "config.json", {"recipe": str})

    def vocab(self, required=None):
        """vocab.json as a dict; `required` maps the keys the recipe reads to their types."""
        self.refuse_if_light()
        return read_json_object(self.path / "vocab.json", required)

    def refuse_if_light(self):
        """A one-line error when this is a light seed folder of `study --export` (summary.json and the
        figures, no vocab.json, no checkpoint): nothing in it can generate or be scored."""
        if (self.path / "vocab.json").exists() or self.ckpt.exists() or not (self.path / "summary.json").is_file():
            return
        try:
            config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
            study = json.loads((self.path.parent / "study.json").read_text(encoding="utf-8"))
            options = "".join(f" --{name.replace('_', '-')} {value}" for name, value in study["options"].items())
            command = f"`python reproduce/main.py study --recipe {config['recipe']} --seeds {config['seed']}{options}`"
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            command = "the study's command with --seeds of this seed"
        raise UserError(f"{self.path}: a light seed folder exported by `study --export` (figures and story, no "
                        f"vocab.json, no checkpoint); train the seed again with {command}, or read the study's "
                        f"report ({self.path.parent / 'report.md'})")

    def record_environment(self):
        """Add this training session (the start or a resume; at its first checkpoint, so that a session that
        trained nothing adds nothing) to environment.json: versions, CPU, threads, commit, command line
        (provenance.py)."""
        provenance.record(self.path, session_config(), write_json)
        self.environment_recorded = True

    def write_files(self, **named):
        """config=..., vocab=..., corpus_fingerprint=...: each as <name>.json, whole or not at all."""
        self.ckpt.mkdir(parents=True, exist_ok=True)
        for name, value in named.items():
            write_json(self.path / f"{name}.json", value)

    # ------------------------------------------------------------ per-step checkpoints
    def steps(self):
        """Steps with a state file, newest first."""
        found = []
        for p in self.ckpt.glob("state-*.json"):
            m = re.fullmatch(r"state-(\d+)\.json", p.name)
            if m:
                found.append(int(m.group(1)))
        return sorted(found, reverse=True)

    def read_state(self, step):
        return read_json_object(self.ckpt / f"state-{step}.json", {"step": int})

    def save_step(self, session, saver, step, state, keep_last, name_newest=False):
        """The checkpoint ckpt/model-<step>, then its state file; the last `keep_last` are kept. With
        `name_newest`, ckpt/checkpoint names it (the classics' runs carry that index)."""
        prefix = self.ckpt / f"model-{step}"
        try:
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
            crash_point("checkpoint", step)         # the model files are written, the state file not yet
            write_json(self.ckpt / f"state-{step}.json", dict(state, step=step))
        except (tf.errors.OpError, OSError) as e:
            remove_checkpoint(prefix)
            (self.ckpt / f"state-{step}.json").unlink(missing_ok=True)
            previous = [s for s in self.steps() if s < step]
            kept = f"the checkpoint of step {previous[0]} is intact" if previous else "no earlier checkpoint exists"
            meaning, advice = disk_failure(e)           # TensorFlow's saver names the errno in its message
            raise UserError(f"{self.ckpt}: writing the checkpoint of step {step} failed ({meaning}); {kept}: "
                            f"{advice}, then run `{self.command}`") from e
        self.saved_step = step
        if not self.environment_recorded:          # this session trained a step: say what it ran on
            self.record_environment()
        for old in self.steps()[keep_last:]:
            (self.ckpt / f"state-{old}.json").unlink(missing_ok=True)
            remove_checkpoint(self.ckpt / f"model-{old}")
        if name_newest:
            self.name_newest()

    def restore_latest(self, session, saver, variables, warn, check_state=None):
        """Restore the newest step whose checkpoint and state are intact and return its state (`check_state`
        may refuse a state by raising ValueError). None when the run has no checkpoint yet; a one-line error
        when it has some but none is usable."""
        problems = []
        for step in self.steps():
            try:
                state = self.read_state(step)
                if check_state:
                    check_state(state)
                restore(session, saver, variables, self.ckpt / f"model-{step}")
                self.saved_step = step
                return state
            except (tf.errors.OpError, OSError, ValueError, UserError) as e:
                problems.append(f"step {step}: {describe_error(e)}")
                warn(f"warning: the checkpoint of step {step} in {self.ckpt} is damaged ({describe_error(e)}); "
                     "falling back to the one before")
        if problems:
            raise UserError(f"{self.ckpt}: no intact checkpoint to resume from ({'; '.join(problems)}); "
                            "start a new run with another --run-dir")
        return None

    def discard_after(self, step):
        """Remove checkpoints newer than `step` (written by a run that is being resumed from `step`), with or
        without their state file: a save killed before its state file leaves model files alone."""
        if not self.ckpt.is_dir():
            return
        for path in self.ckpt.iterdir():
            newer = re.fullmatch(r"(?:model|state)-(\d+)\..+", path.name)
            if newer and int(newer[1]) > step:
                path.unlink(missing_ok=True)

    def name_newest(self):
        """ckpt/checkpoint names the newest checkpoint, for TensorFlow's tools. Written here, with paths
        relative to ckpt/ (which TensorFlow resolves against the folder): tf.train's update_checkpoint_state
        would store the path relative to the working directory instead."""
        path = self.ckpt / "checkpoint"
        kept = sorted(self.steps())
        text = f'model_checkpoint_path: "model-{self.saved_step}"\n' + \
            "".join(f'all_model_checkpoint_paths: "model-{step}"\n' for step in kept)
        try:
            write_atomic(path, text)
        except OSError as e:
            raise self.write_failed(path, e) from e

    def finish(self, state):
        """Mark the run finished: its last state file, written again with `finished` (and `state`'s results)."""
        path = self.ckpt / f"state-{self.saved_step}.json"
        try:
            write_json(path, dict(state, step=self.saved_step, finished=True))
        except OSError as e:
            raise self.write_failed(path, e) from e

    def finished_state(self):
        """The newest state file when it says the run has finished (its results written), else None."""
        steps = self.steps()
        if not steps:
            return None
        try:
            state = self.read_state(steps[0])
        except UserError:
            return None                           # damaged: resume falls back to the checkpoint before
        return state if state.get("finished") else None

    def write_failed(self, path, error):
        meaning, advice = disk_failure(error)
        return UserError(f"{path}: cannot write it ({meaning}); the checkpoint of step {self.saved_step} is "
                         f"complete: {advice}, then run `{self.command}`")

    # ------------------------------------------------------------ best checkpoint
    def save_best(self, session, saver, step, valid_figure):
        previous = self.best_info()
        prefix = self.best / f"model-{step}"
        self.best.mkdir(parents=True, exist_ok=True)
        try:
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
            write_json(self.best / "best.json", {"step": step, f"valid_{self.best_figure}": valid_figure,
                                                 "checkpoint": prefix.name})
        except (tf.errors.OpError, OSError) as e:
            remove_checkpoint(prefix)
            meaning, advice = disk_failure(e)
            raise UserError(f"{self.best}: writing the best checkpoint (step {step}) failed ({meaning}): "
                            f"{advice}, then run `{self.command}`") from e
        if previous and previous["checkpoint"] != prefix.name:
            remove_checkpoint(self.best / previous["checkpoint"])

    def best_info(self):
        """best/best.json ({"step", "valid_<best_figure>", "checkpoint"}), None when there is none yet. A
        best.json that holds its figure under `valid_perplexity` whatever it is reads as `valid_<best_figure>`."""
        path = self.best / "best.json"
        if not path.exists():
            return None
        info = read_json_object(path, {"step": int, "checkpoint": str})
        key = f"valid_{self.best_figure}"
        info.setdefault(key, info.get("valid_perplexity"))
        if info[key] is None:
            raise UserError(f"{path}: no field {key!r}; this run folder is damaged")
        if isinstance(info[key], bool) or not isinstance(info[key], (int, float)):
            raise UserError(f"{path}: field {key!r} is {info[key]!r}, not a number; this run folder is damaged")
        return info

    def checkpoint_for_generation(self, prefer_best=True):
        """The best checkpoint (with `prefer_best`), else the newest intact step's: a prefix path, or a one-line
        error. Runs written before state files existed are found through ckpt/checkpoint's list. When the one
        expected (best.json's, the newest state file's, the one ckpt/checkpoint names) has lost its files, a
        warning line names it and the older one used instead."""
        expected = []
        info = self.best_info() if prefer_best else None
        if info:
            expected.append(self.best / info["checkpoint"])
        newest = {self.ckpt / f"model-{step}" for step in self.steps()} | set(self.indexed_checkpoints())
        expected += sorted(newest, key=lambda prefix: checkpoint_step(prefix) or 0, reverse=True)
        for prefix in expected:
            if checkpoint_files(prefix):
                if prefix != expected[0]:
                    print(f"warning: {expected[0]} has no checkpoint files (deleted?); using the newest intact "
                          f"one, {prefix}", file=sys.stderr)
                return prefix
        self.refuse_if_light()
        raise UserError(f"{self.path}: no checkpoint in this run folder yet; train first "
                        f"(`{self.command}`)")

    def indexed_checkpoints(self):
        """The checkpoints ckpt/checkpoint lists (read as text: tf.train.latest_checkpoint logs
        a TensorFlow ERROR for a listed checkpoint whose files are gone)."""
        index = self.ckpt / "checkpoint"
        try:
            text = index.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return []
        named = re.findall(r'^(model_checkpoint_path|all_model_checkpoint_paths): "([^"]+)"$', text, re.M)
        return [self.ckpt / path for key, path in named]     # relative to ckpt/; an absolute one stays as it is

    def restore_for_reading(self, session, saver, variables, prefix=None, prefer_best=True, say=True):
        """Restore the checkpoint a reader (generate, compare, evaluate) uses: `prefix`, else the best (or,
        without `prefer_best`, the newest) one; returns the prefix restored, and (with `say`) the command
        names it in one line on stderr when it succeeds. A run training meanwhile may replace that checkpoint between finding and reading it:
        then the one that replaced it is read."""
        named = prefix is not None
        prefix = prefix or self.checkpoint_for_generation(prefer_best)
        for attempt in range(3):
            try:
                restore_for_use(session, saver, variables, prefix, self.path)
                if say:
                    say_when_done(f"using {self.describe_checkpoint(prefix)}")
                return prefix
            except UserError:
                newer = None if named or attempt == 2 else self.checkpoint_for_generation(prefer_best)
                if newer is None or newer == prefix:
                    raise
                prefix = newer

    def describe_checkpoint(self, prefix):
        """`best/model-12 (step 12, valid perplexity 40.21)`: the checkpoint relative to the run folder, its
        step, and its validation figure when it is the best one (best.json's, as the recipe measures it)."""
        prefix = Path(prefix)
        try:
            shown = prefix.resolve().relative_to(self.path.resolve())
        except ValueError:
            shown = prefix
        details = [f"step {checkpoint_step(prefix)}"] if checkpoint_step(prefix) is not None else []
        try:
            info = self.best_info() if prefix.parent.resolve() == self.best.resolve() else None
        except UserError:
            info = None
        if info and info["checkpoint"] == prefix.name:
            details.append(f"valid {self.best_figure} {info[f'valid_{self.best_figure}']:.2f}")
        return f"{shown}" + (f" ({', '.join(details)})" if details else "")

    # ------------------------------------------------------------ interrupts
    @contextlib.contextmanager
    def interruptible(self, num_steps):
        """Ctrl-C or `kill` stops the run with one line that says how to continue it (exit 130 or 143)."""
        def how_to_continue():
            if self.saved_step:
                return (f"; the last checkpoint of {self.path} is step {self.saved_step} of {num_steps}: continue "
                        f"with `{self.command}`")
            return f" before the first checkpoint of {self.path}: start it again with `{self.command}`"
        with interrupts_as_errors(how_to_continue):
            yield
