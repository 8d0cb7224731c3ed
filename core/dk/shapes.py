"""The trtexec shape syntax (``input:1x3x224x224,mask:1x1x224x224``), for the CLI and for plugins
whose options take shapes. Errors are :class:`dk.errors.UsageError` naming the option."""

from __future__ import annotations

from dk.errors import UsageError


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
