"""What the classics share: the run folder, the text file, checkpoints and resume, progress and samplers.

    <run>/config.json     {"recipe": ..., every hyperparameter}: enough to rebuild the graph
    <run>/vocab.json      the id -> character (or word) table
    <run>/ckpt/model-<k>.*        tf.compat.v1.train.Saver checkpoint after step k (the last three are kept);
                                  ckpt/checkpoint names the newest (relative paths)
    <run>/ckpt/state-<k>.json     the loop's state after step k, written after the checkpoint (the book's
                                  RunDir.save_step), so a step with a state file has a complete checkpoint:
                                  the step, the metrics rows and the training seconds so far, and what the
                                  recipe's loop carries (each module's docstring says what); `finished` once
                                  the run's results are written
    <run>/metrics.csv     one row per progress line
    <run>/samples.txt     text generated during training

`train --recipe NAME --resume --run-dir RUN` (`Run.open`) continues RUN from its newest complete checkpoint,
with the configuration in RUN/config.json, and ends with the metrics, samples and weights of a run never
interrupted. `REPRODUCE_CRASH_AT=checkpoint:<k>` kills a run after writing the weights of step k and before
its state (the book's fault point); `REPRODUCE_CRASH_AT=<recipe>:<k>` right after the whole checkpoint of step k.
"""
import base64
import contextlib
import json
import logging
import os
import time
import types
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce.checkpoints import (RunDir, _crash_point, describe_error, pyplot, restore_for_use,  # noqa: F401
                                   save_figure, write_atomic, write_csv, write_json, write_output)  # (as common.*)
from reproduce.model import session_config as core_session_config
from reproduce.progress import eta, format_seconds  # noqa: F401
from reproduce.classics import THREADS_ENV
from reproduce.errors import UserError

tf1 = tf.compat.v1
tf1.disable_eager_execution()


def session_config(threads=None):
    """The core's session set-up; `threads` (else $REPRODUCE_THREADS, else the core's choice) pins both the
    intra-op and the inter-op pool, e.g. 1 to leave the other core to another job."""
    config = core_session_config()
    threads = threads or os.environ.get(THREADS_ENV)
    if threads:
        try:
            threads = int(threads)
        except ValueError:
            raise UserError(f"${THREADS_ENV}={threads!r}: expected a number of threads", exit_code=2) from None
        if threads < 1:
            raise UserError(f"{THREADS_ENV} / --threads must be at least 1 (got {threads})", exit_code=2)
        config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = threads
    return config


@contextlib.contextmanager
def quiet_deprecations():
    """The legacy cells announce their deprecation on every construction; the recipes use them on purpose."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


def seeded_initializer():
    """Scope in which to build a recipe's graph so that `--seed` fixes the legacy cells' kernels too.

    The legacy cells draw their kernels from tf-keras's default glorot-uniform initializer, which ignores
    the graph seed: two runs with one --seed started from different weights. tf.compat.v1's own
    glorot-uniform initializer (the same distribution) as the scope's default takes its seed from the
    graph. Biases keep the cells' explicit initializers; variable names are unchanged."""
    return tf1.variable_scope(tf1.get_variable_scope(), initializer=tf1.glorot_uniform_initializer())


# ---------------------------------------------------------------- text files
def read_text(path, download_url=None, download=False, log=print):
    """A UTF-8 text file; fetched from `download_url` first when absent and downloading is allowed."""
    path = Path(path)
    if not path.is_file() and download_url and download:
        from reproduce.download import fetch, make_session
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"Downloading {download_url} into {path}")
        with make_session() as session:
            fetch(session, download_url, path, timeout=(10, 60))
    if not path.is_file():
        hint = " (or add --download to fetch it)" if download_url else ""
        raise UserError(f"{path}: no such text file; give one with --text-file{hint}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                        "convert it to UTF-8") from e
    if not text.strip():
        raise UserError(f"{path}: the file is empty; give a text to train on with --text-file")
    return text


# ---------------------------------------------------------------- run folders, checkpoints and resume
KEEP_CHECKPOINTS = 3
CONFIG_KEYS = {"chars_in_segment": "sample_length"}      # options that config.json holds under another name


def resume_command(recipe, path, compare=False):
    """The command that continues the run (or, with `compare`, the cell comparison) in `path`."""
    cells = " --compare-cells" if compare else ""
    return f"python reproduce/main.py train --recipe {recipe}{cells} --resume --run-dir {path}"


def new_run_path(args, recipe):
    """--run-dir, or checkpoints/<recipe>-<time>; it must not hold a run already."""
    run = Path(args.run_dir) if args.run_dir else Path("checkpoints") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
    if run.exists() and any(run.iterdir()):
        raise UserError(f"{run} already holds a run; continue it with --resume or choose another --run-dir",
                        exit_code=2)
    return run


def new_run_dir(args, recipe):
    """`new_run_path`, created."""
    run = new_run_path(args, recipe)
    run.mkdir(parents=True, exist_ok=True)
    return run


def resume_path(args):
    """The --run-dir of `train --resume`: a folder that exists."""
    if not args.run_dir:
        raise UserError("--resume needs --run-dir: the run folder to continue", exit_code=2)
    path = Path(args.run_dir)
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder to resume", exit_code=2)
    return path


def given_options(args, options):
    """{option: value} of those of `options` (argparse names) given on the command line."""
    return {name: getattr(args, name) for name in options if getattr(args, name, None) is not None}


def check_options(path, saved, given):
    """A one-line error when an option given contradicts `saved`, the configuration the run was started with."""
    for name, value in given.items():
        was = saved.get(CONFIG_KEYS.get(name, name))
        same = os.path.realpath(value) == os.path.realpath(was) if name == "text_file" and was else value == was
        if not same:
            raise UserError(f"--{name.replace('_', '-')} {value} contradicts {path} ({name} {was} when it was "
                            "started); leave it out to resume the run as it was started", exit_code=2)


def read_run_config(path, recipe):
    """config.json of the run of `recipe` in `path`; a one-line error when `path` holds no such run."""
    if (path / "comparison.json").is_file():
        raise UserError(f"{path} holds a cell comparison; resume it with --compare-cells", exit_code=2)
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not a run folder (no config.json); nothing to resume", exit_code=2) from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}/config.json is unreadable ({e}); this run folder is damaged", exit_code=2) from e
    if not isinstance(config, dict) or "recipe" not in config:
        raise UserError(f"{path}/config.json names no recipe; this run folder is damaged", exit_code=2)
    if config["recipe"] != recipe:
        raise UserError(f"{path} holds a run of recipe {config['recipe']}, not {recipe}; resume it with "
                        f"--recipe {config['recipe']}", exit_code=2)
    return config


def encode_array(array):
    """A numpy array as a JSON value, exactly: its dtype, shape and bytes (base64)."""
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}


def decode_array(value):
    return np.frombuffer(base64.b64decode(value["base64"]), dtype=value["dtype"]).reshape(value["shape"]).copy()


def plain_rows(rows):
    """metrics.csv rows as JSON values that print as they did: a numpy float becomes the Python float of
    its shortest repr (a float32 loss 6.0633655 is still written 6.0633655 after a resume)."""
    return [{key: float(str(value)) if isinstance(value, np.floating) else value for key, value in row.items()}
            for row in rows]


class Run:
    """A classic recipe's run folder: config.json, vocab.json and checkpoints, each with the loop's state.

    `save` is the book's RunDir.save_step: the TF checkpoint ckpt/model-<k>, then the loop's state
    ckpt/state-<k>.json, so a state file exists only beside a complete checkpoint; the last three are kept
    and ckpt/checkpoint names the newest (for `generate`). `restore` continues from the newest intact pair.
    """

    def __init__(self, path, config, command, resumed=False, part_of_job=False):
        self.path, self.config, self.command, self.resumed = Path(path), config, command, resumed
        self.part_of_job = part_of_job            # a cell comparison restarts a run without checkpoint
        self.folder = RunDir(self.path, resume_command=command)
        self.saver = None
        self.saved_step = 0                       # the step of the newest complete checkpoint

    @classmethod
    def open(cls, args, config, options, path=None, command=None):
        """This `train`'s run of config["recipe"]: a new one with `config` in --run-dir (or `path`), or with
        --resume the run there, with its saved configuration once the `options` given agree with it.
        `command` resumes the job the run is part of (default: the run's own `train --resume`)."""
        recipe, part_of_job = config["recipe"], command is not None
        if not getattr(args, "resume", False):
            path = Path(path) if path else new_run_path(args, recipe)
            return cls(path, config, command or resume_command(recipe, path), part_of_job=part_of_job)
        path = Path(path) if path else resume_path(args)
        saved = read_run_config(path, recipe)
        check_options(path, saved, given_options(args, options))
        if not RunDir(path).steps():
            raise UserError(f"{path}: no checkpoint to resume from (the run stopped before its first one); "
                            "start it again with another --run-dir", exit_code=2)
        return cls(path, saved, command or resume_command(recipe, path), resumed=True, part_of_job=part_of_job)

    def finished(self, log=print):
        """The state a resumed run saved when it finished, after saying so; None when it has more to do."""
        if not self.resumed:
            return None
        step = self.folder.steps()[0]
        try:
            state = json.loads((self.folder.ckpt / f"state-{step}.json").read_text())
        except (OSError, ValueError):
            return None                           # damaged: `restore` falls back to the checkpoint before
        if not state.get("finished"):
            return None
        log(f"{self.path} has finished: all {step} steps trained and its results written; nothing to resume")
        return state

    def start(self, vocab):
        """A new run: its folder, config.json and vocab.json. A resumed one: the text read must give the
        vocabulary the run was trained with."""
        if self.resumed:
            if load_vocab(self.path) != vocab:
                raise UserError(f"{self.config['text_file']} is not the text {self.path} was trained on (it gives "
                                "another vocabulary than vocab.json)", exit_code=2)
            return
        self.folder.ckpt.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "config.json", self.config)
        write_json(self.path / "vocab.json", vocab)

    @contextlib.contextmanager
    def session(self, model, log=print):
        """A session on `model`'s graph: its variables initialised (a new run) or restored (`restore`); yields
        (session, the loop's state). Ctrl-C inside stops the run with how to resume it (`interruptible`)."""
        with tf1.Session(graph=model.graph, config=session_config()) as session, model.graph.as_default(), \
                self.interruptible():
            yield session, self.restore(session, model.init, log)

    def restore(self, session, init, log=print):
        """A new run: `init` run, and {}. A resumed one: the newest intact checkpoint restored, and its state."""
        self.saver = tf1.train.Saver()
        if not self.resumed:
            session.run(init)
            return {}
        state = self.folder.restore_latest(session, types.SimpleNamespace(
            saver=self.saver, saved_variables=tf1.global_variables()), warn=log)
        self.saved_step = state["step"]
        self.folder.discard_after(self.saved_step)
        self._name_newest()
        log(f"Resumed {self.path} after step {self.saved_step} of {self.config['num_steps']}")
        return state

    def save(self, session, step, state):
        """The checkpoint after `step`, with the loop's `state` (JSON values)."""
        with quiet_deprecations():
            self.folder.save_step(session, self.saver, step, dict(state, step=step), KEEP_CHECKPOINTS)
        self.saved_step = step
        self._name_newest()
        _crash_point(self.config["recipe"], step)     # REPRODUCE_CRASH_AT=<recipe>:<step>, after a complete one

    def finish(self, state):
        """Mark the run finished: its last state file, written again with `finished` (and `state`'s results)."""
        path = self.folder.ckpt / f"state-{self.saved_step}.json"
        try:
            write_json(path, dict(state, step=self.saved_step, finished=True))
        except OSError as e:
            raise self._write_failed(path, e) from e

    @contextlib.contextmanager
    def interruptible(self):
        """Ctrl-C (or `kill`) stops the run with one line that says how to resume it."""
        try:
            yield
        except KeyboardInterrupt:
            if not (self.saved_step or self.part_of_job):
                raise UserError(f"interrupted before the first checkpoint of {self.path}; nothing to resume: "
                                "train again with another --run-dir", exit_code=130) from None
            where = (f"the last checkpoint of {self.path} is step {self.saved_step} of {self.config['num_steps']}"
                     if self.saved_step else f"{self.path} had no checkpoint yet")
            raise UserError(f"interrupted; {where}: continue with `{self.command}`", exit_code=130) from None

    def _name_newest(self):
        """ckpt/checkpoint names the newest checkpoint, for `generate` and TensorFlow's tools. Written here,
        with paths relative to ckpt/ (which TensorFlow resolves against the folder): tf.train's
        update_checkpoint_state would store the path relative to the working directory instead."""
        path = self.folder.ckpt / "checkpoint"
        kept = sorted(self.folder.steps())
        text = f'model_checkpoint_path: "model-{self.saved_step}"\n' + \
            "".join(f'all_model_checkpoint_paths: "model-{step}"\n' for step in kept)
        try:
            write_atomic(path, text)
        except OSError as e:
            raise self._write_failed(path, e) from e

    def _write_failed(self, path, error):
        return UserError(f"writing {path} failed ({describe_error(error)}); the checkpoint of step "
                         f"{self.saved_step} is complete: free space and run `{self.command}`")


def load_vocab(run):
    try:
        return json.loads((run / "vocab.json").read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{run}/vocab.json is missing or unreadable; this run folder is damaged") from e


def find_run(checkpoint):
    """`--checkpoint` is a run folder or a checkpoint prefix inside one: (run folder, its config) or None."""
    path = Path(checkpoint)
    for folder in [path, *path.parents][:4]:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and "recipe" in config:
            return folder, config
    return None


def checkpoint_prefix(run, checkpoint):
    """The newest checkpoint of `run`, or the prefix the user named; a one-line error when there is none."""
    path = Path(checkpoint)
    if not path.is_dir():
        if not Path(str(path) + ".index").exists():
            raise UserError(f"{path}: no such checkpoint (expected {path.name}.index beside it)")
        return str(path)
    prefix = tf1.train.latest_checkpoint(str(run / "ckpt"))
    if prefix is None:
        raise UserError(f"{run}: no checkpoint in this run folder yet; train it first")
    return prefix


def restore(session, saver, prefix, run):
    """The core's shape-checked restore of every variable of the graph (TF 2 would load other shapes)."""
    restore_for_use(session, saver, tf1.global_variables(), prefix, run)


# ---------------------------------------------------------------- samplers
def sample_with_temperature(probabilities, rng, temperature=1.0):
    """The char-rnn article's `sample(preds, temperature)`: log, divide by the temperature, renormalise, draw."""
    logits = np.log(np.asarray(probabilities, dtype=np.float64) + 1e-20) / temperature
    p = np.exp(logits - logits.max())
    return int(np.argmax(rng.multinomial(1, p / p.sum())))


def pick_sampler(name, recipe_default, temperature):
    """greedy (argmax) or temperature; `top3` is the book's sampler and the shared default, and means
    "this recipe's own" here: the classics' articles never used it."""
    if name in (None, "top3"):
        name = recipe_default
    if name == "greedy":
        return lambda p, rng: int(np.argmax(p))
    if name == "temperature":
        if not temperature > 0:
            raise UserError(f"--temperature must be above 0 (got {temperature})", exit_code=2)
        return lambda p, rng: sample_with_temperature(p, rng, temperature)
    raise UserError(f"--sampler {name}: the classic recipes sample with greedy or temperature", exit_code=2)


def apply_options(config, args, keys):
    """The command-line values given (not None) of `keys` replace the recipe's defaults in `config`."""
    for key in keys:
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    return config


def positive(value, option):
    if value is not None and value <= 0:
        raise UserError(f"{option} must be above 0 (got {value})", exit_code=2)
    return value
