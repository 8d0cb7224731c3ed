"""``DK_SERVE_TRACE=1``: a ``perf_counter`` trace of every infer request, stage by stage.

The stages, in milliseconds: ``headers`` (first byte to the end of the headers, in the protocol),
``body`` (the end of the headers to the whole body read), ``decode`` (body checks and tensor
decoding), ``hop_in`` (handing the feeds to the engine thread), ``engine`` (``Engine.infer``),
``hop_out`` (back on the event loop), ``outputs`` (choosing and classifying outputs; encoding the
response follows, as the trace goes into it). They go into the response's
``parameters.trace_ms`` and, at debug level, the ``dk.serve`` log. Off by default: a disabled
trace costs one attribute test per stage.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, MutableMapping

ENABLED = os.environ.get("DK_SERVE_TRACE", "").strip().lower() not in ("", "0", "false", "no")
#: The scope keys the protocol stamps (perf_counter seconds) when tracing.
BEGIN, HEADERS = "dk.trace.begin", "dk.trace.headers"
log = logging.getLogger("dk.serve")


def stamp(scope: MutableMapping[str, Any], key: str) -> None:
    if ENABLED:
        scope[key] = time.perf_counter()


def stages(scope: Any, marks: dict[str, float]) -> dict[str, float]:
    """Milliseconds between consecutive marks: ``received``, ``decoded``, ``submitted``,
    ``engine_start``, ``engine_end``, ``resumed``, ``encoded``."""
    begin, headers = scope.get(BEGIN), scope.get(HEADERS)
    order = [("body", "received"), ("decode", "decoded"), ("hop_in", "engine_start"), ("engine", "engine_end"),
             ("hop_out", "resumed"), ("outputs", "encoded")]
    out: dict[str, float] = {}
    if begin is not None and headers is not None:
        out["headers"] = (headers - begin) * 1e3
    previous = headers if headers is not None else marks.get("start")
    for name, key in order:
        if key in marks and previous is not None:
            out[name] = (marks[key] - previous) * 1e3
            previous = marks[key]
    log.debug("trace %s", " ".join(f"{k}={v:.3f}" for k, v in out.items()))
    return out
