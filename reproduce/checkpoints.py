"""TensorFlow checkpoints: their files, a shape-checked restore, and the tests' fault point.

The run folder that holds them is rundir.RunDir.
"""
import os
import signal
from pathlib import Path

import tensorflow as tf

from reproduce.errors import UserError, describe_error

tf1 = tf.compat.v1


def checkpoint_files(prefix):
    prefix = Path(prefix)
    return [p for p in prefix.parent.glob(prefix.name + ".*")]


def remove_checkpoint(prefix):
    for p in checkpoint_files(prefix):
        p.unlink(missing_ok=True)


def crash_point(name, step):
    """Fault injection for the tests: `REPRODUCE_CRASH_AT=<name>:<step>` SIGKILLs the process here."""
    if os.environ.get("REPRODUCE_CRASH_AT") == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


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
