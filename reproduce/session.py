"""How every recipe's session is set up, and the random-number state a checkpoint carries.

Importable without building a graph: it neither imports the book's model nor turns eager execution off.
"""
import argparse
import base64
import os

import numpy as np
import tensorflow as tf

from reproduce.argtypes import available_cores, thread_count
from reproduce.errors import UserError

tf1 = tf.compat.v1

THREADS_ENV = "REPRODUCE_THREADS"          # train --threads sets it for every session of the run


def threads_wanted(threads=None):
    """`threads`, else $REPRODUCE_THREADS, checked (argtypes.thread_count: 1 ... 4 x the cores), or None;
    a bad value is a one-line usage error naming where it came from."""
    given = threads or os.environ.get(THREADS_ENV)
    if not given:
        return None
    try:
        return thread_count(str(given))
    except argparse.ArgumentTypeError as e:
        where = "--threads" if threads else f"${THREADS_ENV}"
        raise UserError(f"{where}={given}: {e}", exit_code=2) from None


def session_config(cores=None, threads=None):
    """Two ops side by side, each with half the cores (on 2 cores: one thread per op). GPU used when present.

    The fast graph is a serial chain of small per-step ops with large independent work beside it
    (fast_unroll.py): the chain keeps one stream busy while the output layer and the weight
    gradients run in the other. Measured on this 2-core machine: 20 ms per training iteration,
    against 44 ms with both cores inside every op (TensorFlow's default).

    `threads` (else $REPRODUCE_THREADS) pins both the intra-op and the inter-op pool, e.g. 1 to leave
    the other core to another job."""
    cores = cores or available_cores()
    config = tf1.ConfigProto(intra_op_parallelism_threads=max(1, cores // 2), inter_op_parallelism_threads=2,
                             allow_soft_placement=True)
    threads = threads_wanted(threads)
    if threads:
        config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = threads
    return config


# ---------------------------------------------------------------- state files: exact JSON values
def rng_state(rng):
    """A numpy RandomState's state as a JSON value."""
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def set_rng_state(rng, state):
    name, keys, pos, has_gauss, cached = state
    rng.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


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
