"""Parsing of the CLI's compact option syntaxes (key=value, plugin:precision; shapes: dk.shapes).

Errors are :class:`dk.errors.UsageError`: one line naming the option, exit code 2.
"""

from __future__ import annotations

import math

import click

from dk.errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8")  # as dk.specs.PRECISIONS; not imported to keep --help fast


class Seconds(click.FloatRange):
    """A finite number of seconds in a range (click's FloatRange lets nan and inf through)."""

    name = "number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


def parse_key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("threads=2", "level=all")`` -> {"threads": "2", "level": "all"}."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option: {pair!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def parse_plugin_list(text: str) -> list[tuple[str, str]]:
    """``torch,ort,ort:int8`` -> [("torch", "fp32"), ("ort", "fp32"), ("ort", "int8")]."""
    entries = []
    for part in text.split(","):
        name, _, precision = part.strip().partition(":")
        precision = precision or "fp32"
        if not name:
            raise UsageError(f"--plugins: empty plugin name in {text!r}")
        if precision not in PRECISIONS:
            raise UsageError(f"--plugins: {part!r}: precision must be one of {', '.join(PRECISIONS)}")
        entries.append((name, precision))
    if len(entries) < 2:
        raise UsageError("--plugins: give at least two engines to compare, e.g. torch,ort")
    return entries


def check_ranges(min_s: dict, opt_s: dict, max_s: dict) -> None:
    """min <= opt <= max per dimension, and the same inputs and ranks in each."""
    names = set(min_s) | set(opt_s) | set(max_s)
    for name in names:
        given = [s for s in (min_s.get(name), opt_s.get(name), max_s.get(name)) if s is not None]
        if len({len(s) for s in given}) > 1:
            raise UsageError(f"input {name!r} has shapes of different rank in min/opt/max")
        lo, hi = min_s.get(name), max_s.get(name)
        if lo and hi and any(a > b for a, b in zip(lo, hi)):
            raise UsageError(f"input {name!r}: --min-shapes {lo} exceeds --max-shapes {hi}")
        opt = opt_s.get(name)
        if opt and ((lo and any(a > b for a, b in zip(lo, opt))) or (hi and any(a > b for a, b in zip(opt, hi)))):
            raise UsageError(f"input {name!r}: --opt-shapes {opt} is outside min..max")


def check_option_scopes(options: dict[str, str], plugins: list[str]) -> None:
    """Refuse ``-o PLUGIN:KEY=VALUE`` whose PLUGIN is none of this run's ``plugins``: such an
    option would reach no plugin (``-o ortt:level=all`` was dropped without a word)."""
    import difflib

    run = list(dict.fromkeys(p for p in plugins if p))
    for key, value in options.items():
        scope, sep, name = key.partition(":")
        if not sep or scope in run:
            continue
        close = difflib.get_close_matches(scope, run, n=1)
        hint = f"did you mean '{close[0]}:{name}'?" if close else "give the prefix of one of them, or none"
        raise UsageError(f"-o {key}={value}: '{scope}' is not a plugin of this run ({', '.join(run)}); {hint}")
