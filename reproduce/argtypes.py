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


def story_numbers(text):
    """Story numbers as ranges and single numbers, `101-209` or `7,12,30-40`: a sorted list of ints in 1..999
    (the files `001.txt` ... `999.txt`)."""
    numbers = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a story number or a range like 101-209")
        if not 1 <= low <= high <= 999:
            raise argparse.ArgumentTypeError(f"{part.strip()!r}: story numbers go from 1 to 999, low to high")
        numbers.update(range(low, high + 1))
    return sorted(numbers)
