"""Progress for long work: a bar over a step's iterations, and the ETA of the per-step lines."""
import sys
import time


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


def progress_bar(total, description):
    """A tqdm bar on a terminal (none when output is a file or a pipe, or tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:                                 # progress bars are a nicety, never a requirement
        return None
    return tqdm(total=total, desc=description, unit="it", leave=False, disable=None, mininterval=0.5,
                file=sys.stderr)
