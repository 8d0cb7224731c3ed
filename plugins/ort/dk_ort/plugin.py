"""dk plugin ``ort``: ONNX Runtime graph optimisation, int8 PTQ (QDQ) and CPU/CUDA/TensorRT engines.

Thin hook functions only: onnxruntime, onnx and the plugin's working modules are imported
inside the hooks, so importing this module stays cheap.
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
    from dk_ort.providers import DEVICES, devices_from_providers, ort_distribution, ort_installed

    info = PluginInfo(
        name="ort",
        kind="engine",
        formats_in=["onnx"],
        formats_out=["onnx", "ort"],
        precisions=["fp32", "fp16", "int8"],
        devices=list(DEVICES),
    )
    dist = ort_distribution()
    if not ort_installed() or dist is None:
        info.available, info.status = False, "missing-dependency"
        info.reason = "needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu for CUDA/TensorRT)"
        return info
    info.versions = {dist[0]: dist[1]}
    from dk_ort.int8_isa import cpu_advice

    info.details = {"int8": cpu_advice()}
    if dist[0] == "onnxruntime":
        info.devices = ["cpu"]
    if probe:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        info.devices = devices_from_providers(providers)
        info.details.update(providers=providers, device=onnxruntime.get_device())
    return info


@hookimpl
def dk_export(request: ExportRequest) -> Artifact:
    from dk_ort.export import export_onnx

    return export_onnx(request)


@hookimpl
def dk_quantize(request: QuantizeRequest) -> Artifact:
    from dk_ort.quantize import quantize_onnx

    return quantize_onnx(request)


@hookimpl
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
    from dk_ort.engine import load_engine

    return load_engine(artifact, device, options)
