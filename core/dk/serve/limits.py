"""Defences applied before any parsing: the error type, length headers, JSON depth (linear), declared shapes."""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

_PATH = re.compile(r"(?<![\w/\\])(?!/v2/)(?:[A-Za-z]:)?(?:[\\/][\w.\-~+@]+){2,}[\\/]?")  # not the server's own URLs
MAX_RANK = 16


class HttpError(Exception):
    """An answer to the client: ``status`` and a one-line message sent as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = scrub(message)


def byte_count(value: str | bytes | None) -> int | None:
    """A length header's value (Content-Length, Inference-Header-Content-Length) as a number, or
    None when it is absent or not 1 to 18 ASCII digits (``str.isdigit`` also takes "²", which
    ``int`` refuses, and ``int`` refuses over 4300 digits)."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if 0 < len(text) <= 18 and text.isascii() and text.isdigit() else None


def scrub(text: str, limit: int = 500) -> str:
    """One line without file-system paths, short enough for a response."""
    line = " ".join(str(text).split())
    line = _PATH.sub("<path>", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def json_depth(body: bytes | bytearray | memoryview, block: int = 1 << 18) -> int:
    """Deepest nesting of arrays and objects in a JSON text, without parsing it.

    Linear in the body whatever it holds (vectorised, in blocks of ``block`` bytes, so that other
    threads get the GIL between blocks: a 64 MiB body run in a worker thread leaves the event loop
    answering within milliseconds): a quote counts
    as a string delimiter unless an odd run of backslashes precedes it, and brackets inside strings
    do not count. Exact for valid JSON; for invalid JSON the parser that follows refuses it anyway.
    """
    data = np.frombuffer(body, dtype=np.uint8)
    depth = deepest = 0
    in_string = False  # inside a string at the block boundary
    backslashes = 0  # length of the run of backslashes that ended the previous block
    for start in range(0, len(data), block):
        chunk = data[start: start + block]
        slash = chunk == 92
        quotes = chunk == 34
        run = None
        if backslashes or slash.any():
            index = np.arange(len(chunk), dtype=np.int32)
            # For every position, the index of the last non-backslash at or before it (runs carried over).
            last_plain = np.maximum.accumulate(np.where(slash, np.int32(-1 - backslashes), index))
            run = index - last_plain  # backslashes ending at each position (0 where there is none)
            before = np.empty_like(run)
            before[0], before[1:] = backslashes, run[:-1]
            quotes &= before % 2 == 0
        if quotes.any():
            inside = np.cumsum(quotes, dtype=np.int32) % 2 == (0 if in_string else 1)
            in_string = bool(inside[-1])
        else:
            inside = in_string
        steps = ((chunk == 91) | (chunk == 123)).view(np.int8) - ((chunk == 93) | (chunk == 125)).view(np.int8)
        steps[inside] = 0
        if steps.any():
            level = np.cumsum(steps, dtype=np.int64) + depth
            deepest = max(deepest, int(level.max()))
            depth = int(level[-1])
        backslashes = int(run[-1]) if run is not None else 0
    return deepest


def check_depth(body: bytes | bytearray, limit: int) -> None:
    """400 when ``body`` nests deeper than ``limit``. Small bodies with few brackets skip the scan
    (``bytes.count`` is one C pass, but holds the GIL: large bodies go straight to the blocked scan)."""
    if len(body) <= 1 << 20 and body.count(b"[") + body.count(b"{") <= limit:
        return
    if json_depth(body) > limit:
        raise HttpError(400, f"JSON nested deeper than {limit} levels")


def check_shape(name: str, shape: Any, itemsize: int, max_bytes: int) -> tuple[int, ...]:
    """A declared shape as a tuple of ints, refused (400) when malformed or larger than ``max_bytes``."""
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise HttpError(400, f"input {name!r}: shape must be a list of at most {MAX_RANK} integers")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise HttpError(400, f"input {name!r}: shape {_short(shape)} must hold non-negative integers")
    count = 1
    for d in shape:
        count *= d
    if count * itemsize > max_bytes:
        raise HttpError(400, f"input {name!r}: shape {_short(shape)} declares {count * itemsize} bytes, more "
                             f"than the limit of {max_bytes}")
    return tuple(shape)


def element_count(shape: Sequence[int]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
