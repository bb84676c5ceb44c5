"""Argument types of the command line: a bad value is one line from argparse, exit status 2."""
import argparse


def at_least(minimum, kind=int):
    """A number of `kind` no smaller than `minimum`."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {text})")
        return value
    return parse


def positive(kind):
    """A number of `kind` above 0."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
        return value
    return parse


def probability(text):
    """A dropout rate: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
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


def story_numbers(text):
    """`7,12,30-40` -> [7, 12, 30, ..., 40]: story numbers of the book's site (1 ... 209), sorted, each once."""
    from reproduce.data import SITE_STORIES as last
    numbers = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, final = int(low), int(high if dash else low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {part.strip()!r} is not a story number or a range such as "
                                             "101-209 (write e.g. 7,12,30-40)")
        if not 1 <= first <= final <= last:
            raise argparse.ArgumentTypeError(f"{text!r}: {part.strip()!r} is outside 1 ... {last} or runs backwards "
                                             f"(the site holds stories 1 ... {last})")
        numbers.update(range(first, final + 1))
    return sorted(numbers)
