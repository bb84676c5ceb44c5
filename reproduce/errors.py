"""The one exception type a user mistake is reported with, how every command ends on a signal, and the lines
it prints once it has succeeded."""
import contextlib
import errno
import os
import signal
import sys
import traceback


class UserError(Exception):
    """Something the user can fix: the command line prints it as one line and exits.

    `exit_code` is 2 for a usage mistake (a bad option value), 1 otherwise.
    """

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


# errno -> (its meaning, what to do): the disk errors a write meets, in the words of one error line.
DISK_ERRORS = {
    errno.ENOSPC: ("no space left on device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere"),
    errno.EROFS: ("read-only file system", "write elsewhere (the file system is mounted read-only)"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter name or folder"),
    errno.EACCES: ("permission denied", "check the permissions or write elsewhere"),
    errno.EPERM: ("operation not permitted", "check the permissions or write elsewhere"),
    errno.ENOENT: ("no such file or folder", "create the folder first or write elsewhere"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("is a folder", "give a file name"),
    errno.EIO: ("input/output error", "check the disk"),
}


class DiskError(UserError, OSError):
    """A write that failed, as one line naming the path and the errno's meaning. Also an OSError, so that
    code cleaning up after a failed write (an `except OSError`) still does."""

    def __init__(self, message, meaning, advice, code=None):
        super().__init__(message)
        self.line = message
        self.errno, self.strerror, self.meaning, self.advice = code, meaning, meaning, advice

    def __str__(self):
        return self.line


def disk_failure(error):
    """(meaning, what to do) of a failed write: an OSError's errno, or TensorFlow's error whose message
    carries the C library's text ("... : No space left on device"); else (its first line, a generic hint)."""
    if isinstance(error, DiskError):
        return error.meaning, error.advice
    code = getattr(error, "errno", None)
    if isinstance(error, OSError) and code in DISK_ERRORS:
        return DISK_ERRORS[code]
    text = str(getattr(error, "message", None) or error).lower()
    for known, meaning_and_advice in DISK_ERRORS.items():
        if os.strerror(known).lower() in text:
            return meaning_and_advice
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:], "check the disk or write elsewhere"
    return describe_error(error), "check the disk or write elsewhere"


def write_failed(path, error, kept="nothing was written"):
    """The one line of a write of `path` that failed with `error`: the path, the errno's meaning, what is
    left (`kept`) and what to do; a DiskError (a UserError that is also an OSError)."""
    if isinstance(error, DiskError):
        return error
    meaning, advice = disk_failure(error)
    return DiskError(f"{path}: cannot write it ({meaning}); {kept}: {advice}", meaning, advice,
                     getattr(error, "errno", None))


def describe_error(error):
    """The first line of an exception's message (at most 200 characters), else its class name."""
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0][:200] if text.strip() else error.__class__.__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the process is, so that every command cleans up as it does on Ctrl-C."""


signals_received = []       # SIGINT and SIGTERM, as report_errors' handlers received them


def _raise_terminated(signum, frame):
    signals_received.append(signum)
    raise Terminated()


def _raise_interrupted(signum, frame):
    signals_received.append(signum)
    raise KeyboardInterrupt()


def as_interrupt(error):
    """`error` as the Ctrl-C or SIGTERM it stands for, else None. The exception a signal handler raises
    inside a C extension can come out as another one (TensorFlow's graph building turns it into
    `SystemError: ... returned a result with an exception set`, then an AttributeError): once a signal
    has arrived, any exception but a UserError is that signal."""
    if isinstance(error, KeyboardInterrupt):
        return error
    if isinstance(error, UserError) or not signals_received:
        return None
    return Terminated() if signals_received[-1] == signal.SIGTERM else KeyboardInterrupt()


def interrupt_exit_code(interrupt):
    """130 for Ctrl-C (SIGINT), 143 for `kill` (SIGTERM): the shell's 128 + signal number."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def interrupts_as_errors(rest_of_line):
    """Ctrl-C or SIGTERM inside (however it comes out: as_interrupt) becomes one UserError line, "interrupted"
    or "terminated" then `rest_of_line` (a string, or a function giving it then): what was stopped and how to
    continue. Exit status 130 or 143."""
    try:
        yield
    except (KeyboardInterrupt, Exception) as error:
        interrupt = as_interrupt(error)
        if interrupt is None:
            raise
        stopped = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        rest = rest_of_line() if callable(rest_of_line) else rest_of_line
        raise UserError(stopped + rest, exit_code=interrupt_exit_code(interrupt)) from None


pending_notes = []          # lines for stderr once the command has succeeded (say_when_done)


def say_when_done(line):
    """Print `line` on stderr when the command succeeds (report_errors), so that a failure's one `error:`
    line stands alone: what a reader used (`using best/model-12 ...`)."""
    pending_notes.append(line)


def say_now():
    """Print the `say_when_done` lines at once: for a command whose work is done and whose last lines are its
    answer (the main job ends with its held-out line, not with the checkpoints it used)."""
    for line in pending_notes:
        print(line, file=sys.stderr)
    pending_notes.clear()


def report_errors(action, debug=False):
    """Run `action()`; a UserError, Ctrl-C or SIGTERM becomes one line on stderr, and on success the lines
    of `say_when_done` follow. Returns the exit status."""
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int_handler = signal.getsignal(signal.SIGINT)
    if previous_int_handler is signal.default_int_handler:       # not where SIGINT is ignored (a background job)
        signal.signal(signal.SIGINT, _raise_interrupted)
    signals_received.clear()
    pending_notes.clear()
    try:
        action()
        if signals_received:            # its exception swallowed inside a C extension (TensorFlow's op dispatch)
            raise as_interrupt(RuntimeError("a signal arrived"))
        say_now()
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, Exception) as error:
        interrupt = as_interrupt(error)
        if interrupt is None:
            raise
        print("error: terminated" if isinstance(interrupt, Terminated) else "error: interrupted", file=sys.stderr)
        return interrupt_exit_code(interrupt)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if previous_int_handler is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int_handler)
        signals_received.clear()
        pending_notes.clear()
    return 0
