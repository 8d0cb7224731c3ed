"""The settings of one ``dk serve`` worker."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from dk.errors import UsageError

MIB = 1 << 20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "ki": 1 << 10, "m": 10**6, "mb": 10**6,
          "mib": MIB, "mi": MIB, "g": 10**9, "gb": 10**9, "gib": 1 << 30, "gi": 1 << 30}


@attrs.define
class ServeConfig:
    """What the worker accepts and how it runs the engine.

    :ivar model_name: The name clients use in ``/v2/models/{name}``.
    :ivar max_body: Largest request body in bytes (413 beyond it, checked while streaming).
    :ivar max_json_depth: Deepest JSON nesting accepted (400 beyond it, checked before parsing).
    :ivar max_batch/max_delay_ms: Dynamic batching (off when ``max_batch`` is 1).
    :ivar concurrency: Engine calls that may run at the same time (each in a worker thread).
    :ivar allow_upload: Enable ``POST /v2/repository/models/{name}/upload`` (ONNX only).
    :ivar store: The artifact store uploads are written into.
    :ivar max_upload: Largest uploaded model in bytes.
    :ivar device/engine_options: Where and how ``.../load`` opens an uploaded model (as the served one).
    :ivar header_timeout_s: Longest wait for a request's headers, from the connection or its first
        byte (the connection is then answered 408 and closed).
    :ivar body_timeout_s: Longest wait for a whole request body once its headers are in (408, closed);
        for a model upload, the longest pause between two of its bytes (it may take longer in all).
    :ivar max_connections: Open connections at most; one more is answered 503 and closed.
    :ivar inline_below_ms: Engines whose calls stay shorter than this run on the event loop, without
        a thread hop (see :class:`dk.serve.runner.EngineRunner`); 0: always in a worker thread.
    """

    model_name: str = "model"
    max_body: int = 64 * MIB
    max_json_depth: int = 64
    max_image_pixels: int = 40_000_000
    max_batch: int = 1
    max_delay_ms: float = 2.0
    concurrency: int = 1
    allow_upload: bool = False
    store: Path = attrs.field(converter=Path, factory=lambda: Path("dk-artifacts"))
    max_upload: int = 256 * MIB
    device: str = "cpu"
    engine_options: dict = attrs.field(factory=dict)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000
    inline_below_ms: float = 1.0


def parse_size(text: str | int, option: str = "--max-body") -> int:
    """``64MiB``, ``1M``, ``1048576`` -> bytes (a UsageError naming ``option`` otherwise)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match or match.group(2) is not None and match.group(2).lower() not in _UNITS:
        raise UsageError(f"{option}: {text!r} is not a size such as 64MiB, 10MB or 1048576")
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    if size <= 0:
        raise UsageError(f"{option}: {text!r} must be more than 0 bytes")
    return size
