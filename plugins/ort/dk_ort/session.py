"""Creating ONNX Runtime sessions with dk's options, turning ORT's exceptions into ModelError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dk.errors import ModelError

from dk_ort.options import LEVELS
from dk_ort.providers import require_ort

def session_options(
    level: str = "all", threads: int = 0, optimized_path: Path | None = None, spin: bool = True
) -> Any:
    """SessionOptions for an optimisation level, intra-op thread count (0 = ORT's default), an
    optional file to save the optimised graph to, and whether idle worker threads spin."""
    ort = require_ort()
    so = ort.SessionOptions()
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    so.intra_op_num_threads = threads
    so.log_severity_level = 3  # errors only: ORT's warnings are not actionable for dk users
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return so


def create_session(model: str | os.PathLike | bytes, options: Any, providers: list[Any]) -> Any:
    """An InferenceSession, or :class:`ModelError` in one line when ORT cannot load the model."""
    ort = require_ort()
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    errors = tuple(
        getattr(state, n)
        for n in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf", "InvalidGraph",
                  "NotImplemented", "RuntimeException", "EngineError")
        if hasattr(state, n)
    )
    where = "the model" if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except errors as exc:
        message = " ".join(str(exc).split())
        hint = ""
        if "Protobuf parsing failed" in message or type(exc).__name__ == "InvalidProtobuf":
            hint = " (truncated, or not an ONNX file)"
        raise ModelError(f"onnxruntime cannot load {where}{hint}: {message}") from None
