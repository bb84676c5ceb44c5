"""Files written whole or not at all: text, JSON, CSV, copies, a user's --output file and PNG figures.

Each is written to a temporary file in the destination's folder, flushed to disk and renamed over the
destination, so a crash (or a full disk) leaves the previous version intact. The file gets the mode
`open()` would give it (0666 less the umask), not the temporary file's 0600.

Temporary files carry their writer's PID (`.<name>.<pid>.<random>.tmp`; downloads' `.<name>.<pid>.<random>.part`):
the next write in a folder removes those a killed process left there, never one of a live process.
"""
import csv
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from reproduce.errors import UserError


def _umask_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(?:tmp|part)")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # alive, another user's
        return True
    return True


def remove_stale_temporaries(folder, unnamed_parts=False):
    """Remove the temporary files (`.<name>.<pid>.<random>.tmp` or `.part`) of processes no longer alive in
    `folder`; with `unnamed_parts` (a stories folder), also the `.part` files of downloads from before PIDs
    were in their names."""
    for path in Path(folder).glob(".*.*"):
        if path.suffix not in (".tmp", ".part"):
            continue
        match = TEMPORARY.fullmatch(path.name)
        if (match is None and unnamed_parts and path.suffix == ".part") or (match and not process_alive(int(match["pid"]))):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass                    # not ours to remove after all (permissions): leave it


def replace_atomically(path, write, mode="w"):
    """Call `write(file)` on a temporary file beside `path` (text for mode "w", bytes for "wb"), then
    rename it to `path`. Temporary files killed processes left in that folder are removed first."""
    path = Path(path)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), _umask_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path, text):
    """`text` into `path`, whole or not at all."""
    replace_atomically(path, lambda f: f.write(text), "w")


def write_json(path, value):
    write_atomic(path, json.dumps(value, indent=1) + "\n")


def copy_atomic(source, path):
    """A copy of the file `source` at `path`, whole or not at all."""
    with open(source, "rb") as original:
        replace_atomically(path, lambda f: shutil.copyfileobj(original, f), "wb")


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
        replace_atomically(path, lambda f: figure.savefig(f, format="png", dpi=100), "wb")
    except OSError as e:
        raise UserError(f"writing {path} failed ({e.strerror or e}); free some space") from e
    finally:
        pyplot().close(figure)
