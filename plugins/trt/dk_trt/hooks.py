"""The four hooks of a TensorRT engine plugin, shared by ``trt`` and ``torch2trt``.

Both plugin packages have the same shape: ``doctor.describe``, ``export.export_engine``,
``quantize.quantize_engine`` and ``runtime.load_engine``, one module per stage. Each hook here is a
thin function that imports its stage module only when called, so importing a plugin stays cheap
(no tensorrt, torch or onnx at import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Mapping

from dk.hooks import hookimpl

if TYPE_CHECKING:
    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest, PluginInfo, QuantizeRequest


def engine_hooks(package: str) -> tuple[Callable[..., Any], ...]:
    """``(dk_describe, dk_export, dk_quantize, dk_load_engine)`` for the plugin package ``package``;
    a plugin module assigns them to those four names."""

    def stage(module: str, function: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(f"{package}.{module}"), function)

    @hookimpl
    def dk_describe(probe: bool) -> PluginInfo:
        return stage("doctor", "describe")(probe)

    @hookimpl
    def dk_export(request: ExportRequest) -> Artifact:
        return stage("export", "export_engine")(request)

    @hookimpl
    def dk_quantize(request: QuantizeRequest) -> Artifact:
        return stage("quantize", "quantize_engine")(request)

    @hookimpl
    def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
        return stage("runtime", "load_engine")(artifact, device, options)

    return dk_describe, dk_export, dk_quantize, dk_load_engine
