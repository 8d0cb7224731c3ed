"""Defences applied before any parsing: body size while streaming, JSON depth, declared shapes."""

from __future__ import annotations

import re
from typing import Any, AsyncIterator, Sequence

import numpy as np

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~+@]+){2,}[\\/]?")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENS = {ord("["), ord("{")}
MAX_RANK = 16


class HttpError(Exception):
    """An answer to the client: ``status`` and a one-line message sent as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = scrub(message)


def scrub(text: str, limit: int = 500) -> str:
    """One line without file-system paths, short enough for a response."""
    line = " ".join(str(text).split())
    line = _PATH.sub("<path>", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The whole body, or 413 as soon as the declared length or the bytes received exceed ``limit``.

    A lying or absent Content-Length does not matter: bytes are counted as they arrive.
    """
    if declared is not None:
        if not declared.strip().isdigit():
            raise HttpError(400, f"Content-Length {declared[:40]!r} is not a number")
        if int(declared) > limit:
            raise HttpError(413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    parts: list[bytes] = []
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise HttpError(413, f"request body exceeds the limit of {limit} bytes")
        if chunk:
            parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in a JSON text, without parsing it (linear, in C)."""
    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    delta = np.where((steps == 91) | (steps == 123), 1, -1).astype(np.int32)
    return int(np.cumsum(delta).max())


def check_depth(body: bytes, limit: int) -> None:
    if body.count(b"[") + body.count(b"{") > limit and json_depth(body) > limit:
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
