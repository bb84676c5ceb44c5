"""Progress for long work: a bar over a step's iterations, and the ETA of the per-step lines."""
import sys
import time

from tqdm import tqdm


def format_seconds(seconds):
    """`1h05m` or `3m07s`."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def eta(started, done, total):
    """`ETA 1m05s` from the time since `started` (time.monotonic) and the units done of `total`."""
    elapsed = time.monotonic() - started
    return "ETA " + format_seconds(elapsed / max(done, 1) * max(total - done, 0))


def rate_and_eta(started, done, total, unit, per_done=1):
    """`12,345 <unit>/s, ETA 1m05s`: the rate since `started` (time.monotonic) of `unit`s, `per_done` of them in
    each of the `done` units of work, and the time the rest of `total` takes at that pace. Every long loop's
    progress line ends with it."""
    rate = done * per_done / max(time.monotonic() - started, 1e-9)
    return f"{rate:,.{1 if rate < 100 else 0}f} {unit}/s, {eta(started, done, total)}"


def progress_bar(total, description):
    """A tqdm bar on a terminal (none when output is a file or a pipe)."""
    return tqdm(total=total, desc=description, unit="it", leave=False, disable=None, mininterval=0.5,
                file=sys.stderr)
