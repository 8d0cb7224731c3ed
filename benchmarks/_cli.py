"""Command-line arguments of a benchmark: ``--help`` prints what it measures instead of running it
(and overwriting its recorded results), and an unknown argument is an error, not ignored."""

from __future__ import annotations

import argparse


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose ``--help`` prints ``doc`` (the benchmark's module docstring) as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_args(doc: str | None, *flags: tuple[str, str]) -> argparse.Namespace:
    """Parse ``sys.argv`` for a benchmark described by ``doc`` that takes the given
    ``(flag, help)`` switches, all off by default."""
    parser = benchmark_parser(doc)
    for flag, help_text in flags:
        parser.add_argument(flag, action="store_true", help=help_text)
    return parser.parse_args()
