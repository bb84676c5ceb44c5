"""A run folder: config, vocabulary, per-step checkpoints with the loop's state, the best checkpoint.

    <run>/config.json         the Config the run was started with
    <run>/vocab.json          id -> bigram, and each bigram's count in the training stories
    <run>/corpus_fingerprint.json  what the book printed while reading its files, for the stories read here
    <run>/ckpt/model-<k>.*    TensorFlow checkpoint after step k (the last `keep_last` are kept)
    <run>/ckpt/state-<k>.json the loop's state after step k; written after the checkpoint, so a step
                              whose state file exists has a complete checkpoint
    <run>/best/model-<k>.*    the checkpoint with the best valid perplexity; best/best.json names it
    <run>/metrics.csv, samples.txt, events/   rewritten from the state after every step

Every file is written to a temporary name and renamed, so a crash leaves the previous version intact.
"""
import csv
import io
import json
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import tensorflow as tf

from reproduce.config import Config
from reproduce.errors import UserError

tf1 = tf.compat.v1


def _replace_atomically(path, write, mode):
    """Call `write(file)` on a temporary file in `path`'s folder, then rename it to `path`; never a
    half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path, text):
    """Write `text` to `path` through a temporary file in the same folder; never a half-written file."""
    _replace_atomically(path, lambda f: f.write(text), "w")


def pyplot():
    """matplotlib's pyplot on the Agg back-end (PNG files, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path):
    """A matplotlib figure as a PNG at `path`, written whole or not at all, then closed; a one-line error
    naming the file when it cannot be written."""
    try:
        _replace_atomically(path, lambda f: figure.savefig(f, format="png", dpi=100), "wb")
    except OSError as e:
        raise UserError(f"writing {path} failed ({e.strerror or e}); free some space") from e
    finally:
        pyplot().close(figure)


def write_json(path, value):
    write_atomic(path, json.dumps(value, indent=1) + "\n")


def _checkpoint_files(prefix):
    prefix = Path(prefix)
    return [p for p in prefix.parent.glob(prefix.name + ".*")]


def _remove_checkpoint(prefix):
    for p in _checkpoint_files(prefix):
        p.unlink(missing_ok=True)


def _crash_point(name, step):
    """Fault injection for the tests: `REPRODUCE_CRASH_AT=<name>:<step>` SIGKILLs the process here."""
    if os.environ.get("REPRODUCE_CRASH_AT") == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def describe_error(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0][:200] if text.strip() else error.__class__.__name__


def write_csv(path, columns, rows):
    """`rows` (dicts) as CSV with `columns`, written atomically."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def write_output(path, text):
    """A user's --output file: whole or not at all, a one-line error when it cannot be written."""
    try:
        write_atomic(path, text + "\n")
    except OSError as e:
        raise UserError(f"{path}: cannot write it ({e.strerror}); nothing was written") from e


def restore(session, saver, variables, prefix):
    """`saver.restore`, after checking that the checkpoint holds each of `variables` with the graph's shape.

    TensorFlow 2's resource variables accept a tensor of another shape on restore without a word (a
    checkpoint of another vocabulary would load), so the shapes are compared here first.
    """
    stored = tf1.train.load_checkpoint(str(prefix)).get_variable_to_shape_map()
    for variable in variables:
        name = variable.op.name
        expected = variable.shape.as_list()
        if name not in stored:
            raise ValueError(f"variable {name} is not in the checkpoint")
        if list(stored[name]) != expected:
            raise ValueError(f"variable {name} has shape {list(stored[name])} in the checkpoint, "
                             f"{expected} in this graph")
    saver.restore(session, str(prefix))


def restore_for_use(session, saver, variables, prefix, run_path):
    """`restore` for generation and scoring: any failure is a one-line error naming the checkpoint."""
    try:
        restore(session, saver, variables, prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"{prefix}: cannot restore this checkpoint into the graph of {run_path}/config.json "
                        f"and vocab.json ({describe_error(e)}); it belongs to another run or is damaged") from e


class RunDir:
    def __init__(self, path, resume_command=None):
        self.path = Path(path)
        self.ckpt = self.path / "ckpt"
        self.best = self.path / "best"
        # What the messages of a failed save tell the user to run (the classic recipes name theirs).
        self.resume_command = resume_command or f"train --resume --run-dir {self.path}"

    # ------------------------------------------------------------ set-up
    def create(self, config, reverse_dictionary, counts, corpus_fingerprint):
        for d in (self.path, self.ckpt, self.best):
            d.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "config.json", config.to_dict())
        write_json(self.path / "vocab.json", {"bigrams": reverse_dictionary, "counts": counts})
        write_json(self.path / "corpus_fingerprint.json", corpus_fingerprint)

    def require(self):
        """Check that this is a run folder and return (config, vocab) or raise a one-line error."""
        if not self.path.exists():
            raise UserError(f"{self.path}: no such folder; give a run folder written by `train` "
                            "(checkpoints/<recipe>-<time>)")
        config_path = self.path / "config.json"
        if not config_path.exists():
            raise UserError(f"{self.path}: not a run folder (no config.json); give a folder written by `train`")
        try:
            config = Config.load(config_path)
            vocab = json.loads((self.path / "vocab.json").read_text())
            if not isinstance(vocab.get("bigrams"), list):
                raise ValueError("vocab.json holds no list of bigrams")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{self.path}: config.json or vocab.json is unreadable ({describe_error(e)}); "
                            "this run folder is damaged") from e
        return config, vocab

    # ------------------------------------------------------------ per-step checkpoints
    def steps(self):
        """Steps with a state file, newest first."""
        found = []
        for p in self.ckpt.glob("state-*.json"):
            m = re.fullmatch(r"state-(\d+)\.json", p.name)
            if m:
                found.append(int(m.group(1)))
        return sorted(found, reverse=True)

    def save_step(self, session, saver, step, state, keep_last):
        prefix = self.ckpt / f"model-{step}"
        try:
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
            _crash_point("checkpoint", step)         # the model files are written, the state file not yet
            write_json(self.ckpt / f"state-{step}.json", state)
        except (tf.errors.OpError, OSError) as e:
            _remove_checkpoint(prefix)
            (self.ckpt / f"state-{step}.json").unlink(missing_ok=True)
            previous = [s for s in self.steps() if s < step]
            kept = f"the checkpoint of step {previous[0]} is intact" if previous else "no earlier checkpoint exists"
            raise UserError(f"writing the checkpoint of step {step} to {self.ckpt} failed ({describe_error(e)}); "
                            f"{kept}; free space and run `{self.resume_command}`") from e
        for old in self.steps()[keep_last:]:
            (self.ckpt / f"state-{old}.json").unlink(missing_ok=True)
            _remove_checkpoint(self.ckpt / f"model-{old}")

    def restore_latest(self, session, model, warn):
        """Restore the newest step whose checkpoint and state are intact and return its state.

        None when the run has no checkpoint yet; a one-line error when it has some but none is usable.
        """
        for tmp in self.ckpt.glob("*_temp*"):          # left by a save that was killed
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        problems = []
        for step in self.steps():
            try:
                state = json.loads((self.ckpt / f"state-{step}.json").read_text())
                restore(session, model.saver, model.saved_variables, self.ckpt / f"model-{step}")
                return state
            except (tf.errors.OpError, OSError, ValueError) as e:
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
        for path in self.ckpt.iterdir():
            newer = re.fullmatch(r"(?:model|state)-(\d+)\..+", path.name)
            if newer and int(newer[1]) > step:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------ best checkpoint
    def save_best(self, session, saver, step, valid_perplexity):
        previous = self.best_info()
        prefix = self.best / f"model-{step}"
        try:
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
            write_json(self.best / "best.json", {"step": step, "valid_perplexity": valid_perplexity,
                                                 "checkpoint": prefix.name})
        except (tf.errors.OpError, OSError) as e:
            _remove_checkpoint(prefix)
            raise UserError(f"writing the best checkpoint (step {step}) to {self.best} failed ({describe_error(e)}); "
                            f"free space and run `{self.resume_command}`") from e
        if previous and previous["checkpoint"] != prefix.name:
            _remove_checkpoint(self.best / previous["checkpoint"])

    def best_info(self):
        try:
            return json.loads((self.best / "best.json").read_text())
        except (OSError, ValueError):
            return None

    def checkpoint_for_generation(self):
        """The best checkpoint, else the newest step's: a prefix path, or a one-line error."""
        info = self.best_info()
        if info and _checkpoint_files(self.best / info["checkpoint"]):
            return self.best / info["checkpoint"]
        for step in self.steps():
            if _checkpoint_files(self.ckpt / f"model-{step}"):
                return self.ckpt / f"model-{step}"
        raise UserError(f"{self.path}: no checkpoint in this run folder yet; train first "
                        f"(`python reproduce/main.py train --resume --run-dir {self.path}`)")


def find_run_dir(checkpoint):
    """`--checkpoint` is a run folder or a checkpoint prefix inside one: return (RunDir, prefix or None)."""
    path = Path(checkpoint)
    if path.is_dir() or not path.parent.exists():
        return RunDir(path), None
    for parent in path.parents:
        if (parent / "config.json").exists():
            if not _checkpoint_files(path):
                raise UserError(f"{path}: no such checkpoint (expected {path.name}.index beside it)")
            return RunDir(parent), path
    raise UserError(f"{path}: not a run folder or a checkpoint inside one (no config.json found above it)")
