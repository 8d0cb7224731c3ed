"""dk plugin ``trt``: TensorRT engines from ONNX (fp32/fp16/int8, profiles, DLA, engine cache).

Thin hook functions only: tensorrt, pycuda, onnx, torch and the plugin's working modules are
imported inside the hooks, so importing this module stays cheap.
"""

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
    from dk_trt.doctor import describe

    return describe(probe)


@hookimpl
def dk_export(request: ExportRequest) -> Artifact:
    from dk_trt.export import export_engine

    return export_engine(request)


@hookimpl
def dk_quantize(request: QuantizeRequest) -> Artifact:
    from dk_trt.quantize import quantize_engine

    return quantize_engine(request)


@hookimpl
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
    from dk_trt.runtime import load_engine

    return load_engine(artifact, device, options)
