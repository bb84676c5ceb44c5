"""Files written whole or not at all: text, JSON, CSV, copies, a user's --output file and PNG figures.

One rule for every output the project writes (--output, --out, --export, bench --output, run and study
folders' files), by what its path is when the write starts:
- a new name or a regular file: written to a temporary file in the same folder, flushed to disk and
  renamed over it, so a crash (or a full disk) leaves the previous version intact. The file gets the
  mode `open()` would give it (0666 less the umask), not the temporary file's 0600;
- a symbolic link: resolved (every link in the chain), and its target written by this rule; the link
  stays a link;
- a character device (/dev/null) or a FIFO, or a regular file named through /dev or /proc: written
  through, as a shell's `>` does: opened without being created, truncated or renamed over (a FIFO nobody
  reads is an error at once, not a wait);
- /dev/stdout, /dev/stderr, /dev/fd/N: written through the process's own open file, whatever it is (a
  terminal, a pipe, a redirected file), in order with what the process prints;
- a folder, a socket or a block device: refused in one line, nothing written.
A write that fails is one line naming the path and the errno's meaning (errors.write_failed), and leaves
no temporary file behind.

Temporary files carry their writer's PID (`.<name>.<pid>.<random>.tmp`; downloads' `.<name>.<pid>.<random>.part`):
the next write in a folder removes those a killed process left there, never one of a live process.
"""
import csv
import errno
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from reproduce.errors import DiskError, UserError, write_failed

FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
OWN_FILES = re.compile(r"/dev/(?P<name>stdout|stderr)|(?:/dev|/proc/self)/fd/(?P<fd>\d+)")
TEMPORARY_NAME_CHARS = 200              # of the destination's name in its temporary's (a name limit is 255)


def file_kind(mode):
    """'a regular file', 'a folder', 'a FIFO (named pipe)', ... of an `os.stat` mode."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in FILE_KINDS if test(mode)), "a special file")


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


def output_target(path):
    """(how, where) a write of `path` goes: ("replace", the file or new name, symbolic links resolved) or
    ("through", a character device, FIFO or file named through /dev or /proc); a folder, socket or block
    device is a one-line error."""
    path = Path(path)
    if OWN_FILES.fullmatch(str(path)):              # an open file of this process, whatever it is (a pipe)
        return "through", path
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return "replace", target
    except OSError as e:
        raise write_failed(path, e) from e
    if stat.S_ISREG(mode) and not str(path.absolute()).startswith(("/dev/", "/proc/")):
        return "replace", target
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "through", target
    through = f" (through a symbolic link to {target})" if target != path.absolute() else ""
    raise UserError(f"{path}: {file_kind(mode)}{through}, not a file; nothing was written: give a file name "
                    "(outputs go to regular files, character devices such as /dev/null, or FIFOs)")


def _open_mode(mode):
    return {"encoding": "utf-8"} if "b" not in mode else {}


def _write_through(path, target, write, mode):
    """`write(file)` on the device or FIFO `target`, opened as it is (not created, truncated or replaced)."""
    try:
        inherited = OWN_FILES.fullmatch(str(path))
        if inherited:                               # what Python printed first, then the output
            sys.stdout.flush()
            sys.stderr.flush()
            fd = os.dup(int(inherited["fd"]) if inherited["fd"] else ("stdout", "stderr").index(inherited["name"]) + 1)
        else:                                       # O_NONBLOCK: a FIFO with no reader is ENXIO now, not a wait
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise DiskError(f"{path}: a FIFO (named pipe) that no process reads; nothing was written: start "
                            "its reader first, or give a file name", "no reader", "start its reader first") from e
        raise write_failed(path, e) from e
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, mode, **_open_mode(mode)) as f:
            write(f)
    except OSError as e:
        raise write_failed(path, e, kept="part of it may have gone through (a device or FIFO takes each "
                                         "part as it comes)") from e


def replace_atomically(path, write, mode="w"):
    """Call `write(file)` on a temporary file beside `path` (text for mode "w", bytes for "wb"), then
    rename it to `path`; by the module's rule for what `path` is. Temporary files killed processes left in
    that folder are removed first. A failed write is a DiskError (one line; also an OSError)."""
    how, target = output_target(path)
    if how == "through":
        return _write_through(path, target, write, mode)
    tmp = None
    try:
        remove_stale_temporaries(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:TEMPORARY_NAME_CHARS]}.{os.getpid()}.", suffix=".tmp",
                                   dir=target.parent)
        with os.fdopen(fd, mode, **_open_mode(mode)) as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), _umask_mode())
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        raise write_failed(path, e) from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(folder, names):
    """A DiskError now, before any work, when `names` cannot be written in `folder`: a name too long for its
    file system, or a folder that cannot take a new file (read-only, no permission)."""
    folder = Path(folder)
    for name in names:
        try:
            if len(os.fsencode(name)) > os.pathconf(folder, "PC_NAME_MAX"):
                raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        except OSError as e:
            raise write_failed(folder / name, e) from e
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=f".probe.{os.getpid()}."):
            pass
    except OSError as e:
        raise write_failed(folder / names[0], e) from e


def check_output(path):
    """A one-line error now, before a long job, when its output `path` could not be written by the module's
    rule (a folder in the way, no such folder, a read-only file system, a name too long)."""
    how, target = output_target(path)
    if how == "replace":
        check_writable(target.parent, [target.name])


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
    """A user's --output file (with a final newline): by the module's rule, a one-line error when it
    cannot be written."""
    write_atomic(path, text + "\n")


def pyplot():
    """matplotlib's pyplot on the Agg back-end (PNG files, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path):
    """A matplotlib figure as a PNG at `path`, written by the module's rule, then closed."""
    try:
        replace_atomically(path, lambda f: figure.savefig(f, format="png", dpi=100), "wb")
    finally:
        pyplot().close(figure)
