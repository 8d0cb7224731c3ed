"""Reading a request body: size limit while streaming, a read timeout, and gzip/deflate bodies
decompressed with the limit applied to the decompressed size (a zip bomb stops at the limit)."""

from __future__ import annotations

import asyncio
import zlib
from typing import AsyncIterator, Callable

from dk.serve.limits import HttpError, byte_count

#: Content-Encoding -> zlib ``wbits`` (gzip framing; deflate is the zlib format, as HTTP and Triton mean it).
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def decompressor(encoding: str | None) -> "zlib._Decompress | None":
    """The decompressor for a Content-Encoding header, None for identity, 415 for anything else."""
    name = (encoding or "").strip().lower()
    if name in ("", "identity"):
        return None
    if name not in _WBITS:
        raise HttpError(415, f"Content-Encoding {name[:32]!r} is not supported; send gzip, deflate or identity")
    return zlib.decompressobj(_WBITS[name])


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int, *,
                       encoding: str | None = None, timeout: float | None = None,
                       align_at: int | None = None) -> bytes | bytearray | memoryview:
    """The whole (decompressed) body, or 413 as soon as the declared length, the bytes received or
    the bytes decompressed exceed ``limit``; 408 when it has not all arrived within ``timeout`` s.

    A lying or absent Content-Length does not matter: bytes are counted as they arrive. With a
    declared length (and no encoding) the chunks are copied, as they arrive, into one buffer where
    byte ``align_at`` (the start of binary tensors, when given) is 64-byte aligned: tensors are
    views of it, one copy in all, and no join of a large body blocks the event loop.
    """
    length = byte_count(declared)
    if (encoding or "").strip().lower() in ("", "identity") and length is not None and length <= limit \
            and (align_at is None or align_at <= length):
        return await _read_into_buffer(chunks, length, limit, timeout, align_at)
    if declared is not None:
        if length is None:
            raise HttpError(400, f"Content-Length {declared[:40]!r} is not a number")
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes exceeds the limit of {limit} bytes")
    inflate = decompressor(encoding)
    parts = bytearray()  # grown chunk by chunk: no join of a large body at the end
    state = {"received": 0, "produced": 0}
    with _Deadline(timeout, body_too_slow):
        async for chunk in chunks:
            state["received"] += len(chunk)
            if state["received"] > limit:
                raise HttpError(413, f"request body exceeds the limit of {limit} bytes")
            if inflate is not None:
                _inflate(inflate, chunk, parts, state, limit)
            else:
                parts += chunk
    if inflate is not None:
        _finish(inflate, parts, state, limit, encoding)
    return parts


async def _read_into_buffer(chunks: AsyncIterator[bytes], length: int, limit: int, timeout: float | None,
                            align_at: int | None) -> bytearray | memoryview:
    """A bytearray of the body (JSON only), or a view of one with byte ``align_at`` aligned."""
    # Neither is zero-filled up front (bytearray(n) would memset all of it on the event loop).
    if align_at is None:
        buffer, view = bytearray(), None  # grows by each chunk (realloc; large blocks are remapped, not copied)
    else:
        buffer, view = None, aligned_buffer(length, align_at)
    received = 0
    with _Deadline(timeout, body_too_slow):
        async for chunk in chunks:
            end = received + len(chunk)
            if end > length:  # more than declared: only a broken client or server does this
                raise HttpError(413 if end > limit else 400,
                                f"request body is longer than its Content-Length {length}")
            if view is None:
                buffer += chunk
            else:
                view[received:end] = chunk
            received = end
    if received != length:
        raise HttpError(400, f"request body ended after {received} of its {length} declared bytes")
    return buffer if align_at is None else view


#: Alignment of binary tensors in a body read with ``align_at`` (a cache line; numpy needs the itemsize).
ALIGNMENT = 64


def aligned_buffer(length: int, align_at: int) -> memoryview:
    """A writable ``length``-byte buffer whose byte ``align_at`` is ``ALIGNMENT``-aligned (not
    zero-filled: the caller writes every byte)."""
    import numpy as np

    array = np.empty(length + ALIGNMENT, np.uint8)
    start = (-(array.ctypes.data + align_at)) % ALIGNMENT
    return memoryview(array)[start: start + length]


def stall_limit(timeout: float | None) -> "_Deadline":
    """For a body that may take long in all (an upload of hundreds of MB) but must not pause: a
    deadline to ``restart()`` as each chunk arrives; 408 when none has come for ``timeout`` s (None:
    no limit). Its timer ends with the block, whatever ends it."""
    return _Deadline(timeout, body_stalled)


def body_too_slow(timeout: float) -> HttpError:
    """The 408 for a body not all received within ``timeout`` seconds of its headers."""
    return HttpError(408, f"the request body did not arrive within {timeout:g} s; send it at once")


def body_stalled(timeout: float) -> HttpError:
    """The 408 for a body of which no byte came for ``timeout`` seconds."""
    return HttpError(408, f"the request body stalled: no byte came for {timeout:g} s; send it without pauses")


class _Deadline:
    """Cancels the current task after ``seconds`` (None: never) and turns that cancel, not others,
    into ``error(seconds)`` as the block ends. One timer per request (``asyncio.timeout`` needs
    Python 3.11); ``restart`` counts the seconds from now again."""

    def __init__(self, seconds: float | None, error: Callable[[float], HttpError]):
        self.seconds = seconds
        self.error = error
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None

    def __enter__(self) -> "_Deadline":
        if self.seconds is not None:
            self._task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_later(self.seconds, self._expire)
        return self

    def restart(self) -> None:
        """Count the ``seconds`` from now."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if exc_type is asyncio.CancelledError and self.expired:
            if hasattr(self._task, "uncancel"):
                self._task.uncancel()
            raise self.error(self.seconds) from None


def _inflate(inflate: "zlib._Decompress", data: bytes, parts: bytearray, state: dict, limit: int) -> None:
    try:
        while data:
            piece = inflate.decompress(data, limit + 1 - state["produced"])
            state["produced"] += len(piece)
            if state["produced"] > limit:
                raise HttpError(413, f"decompressed request body exceeds the limit of {limit} bytes")
            parts += piece
            data = inflate.unconsumed_tail
    except zlib.error as exc:
        raise HttpError(400, f"body is not valid compressed data for its Content-Encoding: {exc}") from None


def _finish(inflate: "zlib._Decompress", parts: bytearray, state: dict, limit: int, encoding: str | None) -> None:
    try:
        rest = inflate.flush()
    except zlib.error as exc:
        raise HttpError(400, f"body is not valid compressed data for its Content-Encoding: {exc}") from None
    if state["produced"] + len(rest) > limit:
        raise HttpError(413, f"decompressed request body exceeds the limit of {limit} bytes")
    parts += rest
    if not inflate.eof:
        raise HttpError(400, f"the {encoding.strip().lower()} body ends before its compressed stream does")
