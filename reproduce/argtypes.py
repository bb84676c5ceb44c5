"""Argument types of the command line: a bad value is one line from argparse, exit status 2."""
import argparse
import math
import os

from reproduce.data import SITE_STORIES


def number(text, kind=float):
    """`text` as a number of `kind`; a float must be finite (no option means anything at infinity or NaN)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


def at_least(minimum, kind=int):
    """A number of `kind` no smaller than `minimum`."""
    def parse(text):
        value = number(text, kind)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {text})")
        return value
    return parse


def at_most(maximum, kind=int, why=""):
    """A number of `kind` from 1 to `maximum` (`why`: the reason for that cap, for the message)."""
    def parse(text):
        value = at_least(1, kind)(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}{why} (got {text})")
        return value
    return parse


THREADS_PER_CORE = 4                     # the cap of --threads / $REPRODUCE_THREADS: 4 x the usable cores


def available_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_count(text):
    """Threads of TensorFlow's pools: 1 ... THREADS_PER_CORE x the usable cores (more only queue up, and tens
    of thousands abort TensorFlow)."""
    cores = available_cores()
    return at_most(THREADS_PER_CORE * cores, int, f" ({THREADS_PER_CORE} x the {cores} cores this process may use)")(text)


def positive(kind):
    """A number of `kind` above 0."""
    def parse(text):
        value = number(text, kind)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
        return value
    return parse


def probability(text):
    """A dropout rate: a number in [0, 1)."""
    value = number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (got {text})")
    return value


SEED_MAX = 2 ** 32 - 1                   # numpy's RandomState takes seeds 0 ... 2**32 - 1


def seed(text):
    """A random seed: a whole number in 0 ... 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0 ... {SEED_MAX} (got {text})")
    return value


def number_ranges(text, low, high):
    """`7,12,30-40` -> [7, 12, 30, ..., 40], sorted, each once; a ValueError naming the part that is not a
    number, a range running forwards, or inside low ... high."""
    numbers = set()
    for part in text.split(","):
        first, dash, final = part.strip().partition("-")
        try:
            first, final = int(first), int(final if dash else first)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a number or a range such as {low}-{low + 9}") from None
        if not low <= first <= final <= high:
            raise ValueError(f"{part.strip()!r} is outside {low} ... {high} or runs backwards")
        numbers.update(range(first, final + 1))
    return sorted(numbers)


def story_numbers(text):
    """`7,12,30-40` -> [7, 12, 30, ..., 40]: story numbers of the book's site (1 ... 209), sorted, each once."""
    last = SITE_STORIES
    try:
        return number_ranges(text, 1, last)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e} (the site holds stories 1 ... {last}; write e.g. "
                                         "7,12,30-40)") from None


def story_count(text):
    """How many of the site's stories, from 001.txt: 1 ... 209."""
    last = SITE_STORIES
    return at_most(last, int, f" (the site holds stories 1 ... {last})")(text)
