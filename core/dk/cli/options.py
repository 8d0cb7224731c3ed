"""Parsing of the CLI's compact option syntaxes (shapes, key=value, plugin:precision).

Errors are :class:`dk.errors.UsageError`: one line naming the option, exit code 2.
"""

from __future__ import annotations

from dk.errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8")  # as dk.specs.PRECISIONS; not imported to keep --help fast


def parse_shapes(text: str | None, option: str = "--shapes") -> dict[str, tuple[int, ...]]:
    """``input:1x3x224x224,mask:1x1x224x224`` -> {"input": (1, 3, 224, 224), ...} (trtexec syntax).

    A bad value is one error quoting the piece that is wrong and the form expected."""
    if not text:
        return {}
    expected = "expected NAME:DxDxD with positive integers, e.g. input:1x3x224x224"
    parts = [p.strip() for p in text.split(",")]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, part in enumerate(parts):
        name, sep, dims = part.rpartition(":")
        if not sep and part.isdigit() and i > 0 and ":" in parts[i - 1]:  # input:1,1,8,8
            start = max(j for j in range(i) if ":" in parts[j])
            end = next((j for j in range(i, len(parts)) if not parts[j].isdigit()), len(parts))
            given = ",".join(parts[start:end])
            fixed = parts[start].rpartition(":")[0] + ":" + "x".join(
                [parts[start].rpartition(":")[2], *parts[start + 1 : end]])
            raise UsageError(f"{option}: {given!r} separates dimensions with ','; write {fixed} (',' separates inputs)")
        if not sep or not name:
            raise UsageError(f"{option}: {part!r} has no input name; {expected}")
        if not dims:
            raise UsageError(f"{option}: {part!r} has no dimensions; {expected}")
        pieces = dims.replace("X", "x").split("x")
        bad = next((d for d in pieces if not d.strip().isdigit() or int(d) <= 0), None)
        if bad is not None:
            raise UsageError(f"{option}: {bad!r} in {part!r} is not a positive integer; {expected}")
        shapes[name] = tuple(int(d) for d in pieces)
    return shapes


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
