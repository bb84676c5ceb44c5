"""What the classics share: their use of the run folder (rundir.RunDir), the text file, the legacy cells.

A classic's run folder is the book's (rundir.py): config.json, vocab.json (the id -> character or word
table), ckpt/model-<k>.* with ckpt/state-<k>.json (the step, the metrics rows and the training seconds so
far, and what the recipe's loop carries: each module's docstring says what; `finished` once the run's
results are written), ckpt/checkpoint naming the newest, metrics.csv and samples.txt.

`train --recipe NAME --resume --run-dir RUN` (`open_run`) continues RUN from its newest complete checkpoint,
with the configuration in RUN/config.json, and ends with the metrics, samples and weights of a run never
interrupted. `REPRODUCE_CRASH_AT=checkpoint:<k>` kills a run after writing the weights of step k and before
its state (the book's fault point); `REPRODUCE_CRASH_AT=<recipe>:<k>` right after the whole checkpoint of step k.
"""
import contextlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce.checkpoints import crash_point
from reproduce.config import option_dest
from reproduce.download import fetch, make_session
from reproduce.errors import UserError
from reproduce.sample import pick_sampler
from reproduce.rundir import RunDir
from reproduce.session import session_config

tf1 = tf.compat.v1
tf1.disable_eager_execution()


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
@contextlib.contextmanager
def new_graph(model, seed):
    """Build `model` in a fresh graph (`model.graph`), quietly, with the classics' seeded initializer and `seed`
    as the graph's random seed."""
    model.graph = tf.Graph()
    with model.graph.as_default(), quiet_deprecations(), seeded_initializer():
        tf1.set_random_seed(seed)
        yield


def read_text(path, download_url=None, download=False, log=print):
    """A UTF-8 text file; fetched from `download_url` first when absent and downloading is allowed."""
    path = Path(path)
    if not path.is_file() and download_url and download:
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
OPTION_NAMES = {"sample_length": "chars_in_segment"}      # config.json keys whose option has another name


def given_options(args, config_class):
    """{option: value} of the options of `config_class` given on the command line."""
    dests = [option_dest(f) for f in config_class.option_fields()]
    return {name: getattr(args, name) for name in dests if getattr(args, name, None) is not None}


def same_option(key, value, was):
    if key == "text_file" and was:
        return os.path.realpath(value) == os.path.realpath(was)
    return value == was


def open_run(args, config, path=None, command=None):
    """This `train`'s run folder (rundir.RunDir, locked) for `config` (the recipe's typed config with the options
    given): a new one with `config` in --run-dir (or `path`), or with --resume the run there, with its saved
    configuration once the options given agree with it (the runs of the classics have a fixed length: no option
    extends one). `run.config` is the run's typed config. `command` resumes the job the run is part of (a cell
    comparison; default: the run's own `train --resume`)."""
    resume = getattr(args, "resume", False)
    run_dir = path or args.run_dir
    if resume and run_dir and (Path(run_dir) / "comparison.json").is_file():
        raise UserError(f"{run_dir} holds a cell comparison; resume it with --compare-cells", exit_code=2)
    keys = {option: key for key, option in OPTION_NAMES.items()}
    given = {keys.get(name, name): value for name, value in given_options(args, type(config)).items()}
    run = RunDir.for_training(config.recipe, run_dir, resume, config.to_dict(), given, same=same_option,
                              command=command and (lambda _: command), option_names=OPTION_NAMES)
    run.config = type(config).from_dict(run.config, source=run.path / "config.json")
    if resume and not run.steps():                  # stopped before its first checkpoint: from the start, as the book's
        print(f"{run.path}: no checkpoint yet (the run stopped before its first one); training it from the start")
        run.resumed = False
    return run


def finished(run, log=print):
    """The state a resumed run saved when it finished, after saying so; None when it has more to do."""
    state = run.finished_state() if run.resumed else None
    if state:
        log(f"{run.path} has finished: all {state['step']} steps trained and its results written; nothing to resume")
    return state


def start(run, vocab):
    """A new run: config.json and vocab.json written. A resumed one: the text read must give the vocabulary the
    run was trained with."""
    if run.resumed:
        if run.vocab() != vocab:
            raise UserError(f"{run.config.text_file} is not the text {run.path} was trained on (it gives "
                            "another vocabulary than vocab.json)", exit_code=2)
        return
    run.write_files(config=run.config.to_dict(), vocab=vocab)


@contextlib.contextmanager
def session(run, model, log=print):
    """A session on `model`'s graph: its variables initialised (a new run) or restored from the newest intact
    checkpoint; yields (session, the loop's state: {} for a new run). Ctrl-C or `kill` inside stops the run
    with how to continue it."""
    with tf1.Session(graph=model.graph, config=session_config()) as sess, model.graph.as_default(), \
            run.interruptible(run.config.num_steps):
        run.saver = tf1.train.Saver()
        if not run.resumed:
            sess.run(model.init)
            yield sess, {}
            return
        state = run.restore_latest(sess, run.saver, tf1.global_variables(), warn=log)
        run.discard_after(run.saved_step)
        run.name_newest()
        log(f"Resumed {run.path} after step {run.saved_step} of {run.config.num_steps}")
        yield sess, state


def save(run, session, step, state):
    """The checkpoint after `step`, with the loop's `state` (JSON values); ckpt/checkpoint names it."""
    with quiet_deprecations():
        run.save_step(session, run.saver, step, state, KEEP_CHECKPOINTS, name_newest=True)
    crash_point(run.config.recipe, step)      # REPRODUCE_CRASH_AT=<recipe>:<step>, after a complete one


def generation(options, config):
    """(length, sampler, rng) of `generate` (options: a recipes.GenerateOptions): --length (default: the recipe's
    sample length), the sampler, and a generator seeded by --seed (else the run's)."""
    length = options.length if options.length is not None else config.sample_length
    return length, pick_sampler(options.sampler, options.temperature), \
        np.random.RandomState(config.seed if options.seed is None else options.seed)


def chars_of(prime, char_to_ix):
    """The ids of a primer's characters; a one-line error naming one the run was not trained on."""
    unknown = sorted({ch for ch in prime if ch not in char_to_ix})
    if unknown:
        raise UserError(f"--prime: {unknown[0]!r} is not one of the {len(char_to_ix)} characters this run was "
                        "trained on", exit_code=2)
    return [char_to_ix[ch] for ch in prime]


@contextlib.contextmanager
def restored(run, model, checkpoint, prefer_best=False):
    """A session on `model`'s graph with the checkpoint `generate` names (a run folder: its newest, or with
    `prefer_best` its best) restored into every variable; `run.restored_checkpoint` names it (its prefix)."""
    with tf1.Session(graph=model.graph, config=session_config()) as session, model.graph.as_default():
        run.restored_checkpoint = run.restore_for_reading(session, tf1.train.Saver(), tf1.global_variables(),
                                                          RunDir.find(checkpoint)[1], prefer_best=prefer_best)
        yield session
