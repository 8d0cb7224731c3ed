"""dk plugin ``torch2trt``: torch -> TensorRT through torch2trt, saved as ``..._trt.pth`` (the
TRTModule state dict) and ``..._trt.engine``. Thin hooks; the work is in :mod:`dk_torch2trt.convert`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from dk.hooks import hookimpl
from dk.specs import PluginInfo

if TYPE_CHECKING:
    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest, QuantizeRequest


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_torch2trt.convert import describe

    return describe(probe)


@hookimpl
def dk_export(request: ExportRequest) -> Artifact:
    from dk_torch2trt.convert import export_trt_module

    return export_trt_module(request)


@hookimpl
def dk_quantize(request: QuantizeRequest) -> Artifact:
    from dk_torch2trt.convert import quantize_trt_module

    return quantize_trt_module(request)


@hookimpl
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
    from dk_torch2trt.module import load_engine

    return load_engine(artifact, device, options)
