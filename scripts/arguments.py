"""Argument types the measuring scripts share: a count or a time of zero runs nothing, and ends
in a traceback or, worse, in a report of no failures, only after the run."""

import argparse


def at_least_one(text: str) -> int:
    """A count of rounds, runs, requests or threads."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def some_seconds(text: str) -> float:
    """A duration above zero (not nan)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return seconds
