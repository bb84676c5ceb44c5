"""Chapter 8 of *Natural Language Processing with TensorFlow* (Ganegedara, 2018) on today's TensorFlow.

Importing the package prepares TensorFlow for every entry point (command line, tests, benchmark):
legacy Keras for the `tf.compat.v1.nn.rnn_cell` classes the neighbouring classics use, and an import
that keeps TensorFlow's start-up chatter (oneDNN and CUDA notices, printed before its logging is set
up) off the terminal, so that a user's mistake reads as the one line that explains it.
"""
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Import TensorFlow with file descriptor 2 captured; show the capture only if the import fails."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
            tensorflow.config.list_physical_devices()      # device discovery prints its notices now
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_import_tensorflow_quietly()
