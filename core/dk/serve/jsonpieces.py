"""Large JSON bodies parsed in pieces, so that the GIL is free between them and the event loop
keeps answering liveness probes (CPython's JSON parser holds the GIL for a whole document: a
64 MiB JSON tensor would stall every other request for over a second).

Every ``"data": [...]`` array of numbers is cut out of the document and left as a marker; the
rest (small) is parsed as usual, and each array is parsed when its input is decoded, in pieces of
``PIECE`` bytes cut at commas, with its brackets read as separators. Numbers keep JSON's strict
grammar (``NaN``, ``.5``, ``+1`` are refused as in the whole-document parser); the nesting is not
compared with the shape, only the count of values.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from dk.serve.limits import HttpError

#: Bytes parsed at a time (a few milliseconds of GIL each).
PIECE = 1 << 18
#: The object that stands for a cut-out array: ``{MARKER: index}``.
MARKER = "\u0000dk-data"
_KEY = b'"data"'
_NUL_ESCAPE = b"\\u0000"
_SEPARATORS = bytes.maketrans(b"[]", b"  ")
_NOT_NUMBERS = np.zeros(256, dtype=bool)
_NOT_NUMBERS[[ord(c) for c in '"{}:']] = True


def cut_data_arrays(body: bytes | bytearray) -> tuple[bytes, list[memoryview]]:
    """(the document with each ``"data": [...]`` array replaced by a marker, the arrays' bytes).

    A body that could spell the marker itself (its NUL can only be written ``\\u0000`` in JSON) is
    left whole, so that a marker in the document is always one of ours."""
    if _find(body, _NUL_ESCAPE, 0) >= 0:
        return bytes(body), []
    view = memoryview(body)
    parts: list[bytes] = []
    arrays: list[memoryview] = []
    pos = copied = 0
    while (found := _find(body, _KEY, pos)) >= 0:
        pos = found + len(_KEY)
        if _escaped(body, found):
            continue
        start = _skip_space(body, pos)
        if start >= len(body) or body[start] != ord(":"):
            continue
        start = _skip_space(body, start + 1)
        if start >= len(body) or body[start] != ord("["):
            continue
        end = _closing_bracket(view, start)
        if end is None:  # not a plain array of numbers: leave it to the whole-document parser
            continue
        parts += [bytes(view[copied:start]), json.dumps({MARKER: len(arrays)}).encode()]
        arrays.append(view[start: end + 1])
        pos = copied = end + 1
    parts.append(bytes(view[copied:]))
    return b"".join(parts), arrays


def parse_numbers(array: memoryview, name: str, datatype: str, on_constant: Callable[[str], Any]) -> np.ndarray:
    """The values of one cut-out array, flat, parsed ``PIECE`` bytes at a time (cut at commas)."""
    bad = f"input {name!r}: data is not a (nested) list of {datatype} numbers"
    values: list[np.ndarray] = []
    start, size = 0, len(array)
    while start < size:
        chunk = bytes(array[start: start + PIECE])
        if start + len(chunk) < size:
            cut = chunk.rfind(b",")
            if cut < 0:  # no comma in a whole piece: no JSON number is that long
                raise HttpError(400, bad)
            chunk, start = chunk[:cut], start + cut + 1
        else:
            start = size
        text = chunk.translate(_SEPARATORS).strip()
        if not text:
            continue
        try:
            piece = np.array(json.loads(b"[" + text + b"]", parse_constant=on_constant))
        except (ValueError, TypeError):
            raise HttpError(400, bad) from None
        if piece.ndim != 1 or (piece.size and piece.dtype.kind not in "biuf"):
            raise HttpError(400, bad)
        values.append(piece)
    return np.concatenate(values) if values else np.zeros(0)


def _find(body: bytes | bytearray, key: bytes, pos: int) -> int:
    """``body.find(key, pos)``, searched a piece at a time (the GIL free between pieces)."""
    while pos < len(body):
        hit = body.find(key, pos, pos + PIECE + len(key))
        if hit >= 0:
            return hit
        pos += PIECE
    return -1


def _escaped(body: bytes | bytearray, quote: int) -> bool:
    run = 0
    while quote - run - 1 >= 0 and body[quote - run - 1] == 92:
        run += 1
    return run % 2 == 1


def _skip_space(body: bytes | bytearray, pos: int) -> int:
    while pos < len(body) and body[pos] in b" \t\r\n":
        pos += 1
    return pos


def _closing_bracket(view: memoryview, start: int) -> int | None:
    """Index of the ``]`` closing the ``[`` at ``start``, or None when the array holds anything
    but numbers, commas, brackets and spaces (strings, objects) or never closes."""
    depth = 0
    for block in range(start, len(view), PIECE):
        chunk = np.frombuffer(view[block: block + PIECE], dtype=np.uint8)
        level = np.cumsum((chunk == 91).view(np.int8) - (chunk == 93).view(np.int8), dtype=np.int64) + depth
        closed = np.flatnonzero(level == 0)
        stop = int(closed[0]) + 1 if len(closed) else len(chunk)
        if _NOT_NUMBERS[chunk[:stop]].any():
            return None
        if len(closed):
            return block + int(closed[0])
        depth = int(level[-1])
    return None
