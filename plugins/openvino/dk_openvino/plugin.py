"""dk plugin ``openvino``: OpenVINO IR export (fp32/fp16), NNCF int8, latency and throughput engines.

Thin hook functions only: openvino, nncf and the plugin's working modules are imported inside
the hooks, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dk.hooks import hookimpl
from dk.specs import PluginInfo

if TYPE_CHECKING:
    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest, QuantizeRequest


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_openvino.runtime import DEVICES, nncf_version, openvino_installed, openvino_version

    info = PluginInfo(
        name="openvino",
        kind="engine",
        formats_in=["onnx", "openvino-ir"],
        formats_out=["openvino-ir"],
        precisions=["fp32", "fp16", "int8"],
        devices=list(DEVICES),
    )
    version = openvino_version()
    if version is None or not openvino_installed():
        info.available, info.status = False, "missing-dependency"
        info.reason = "needs OpenVINO: pip install openvino nncf"
        return info
    info.versions = {"openvino": version}
    if (nncf := nncf_version()) is not None:
        info.versions["nncf"] = nncf
    else:
        info.precisions = ["fp32", "fp16"]
        info.details["int8"] = "needs NNCF: pip install nncf"
    if probe:
        from dk_openvino.runtime import core

        ov_core = core()
        info.devices = list(ov_core.available_devices)
        info.details["device_names"] = {d: ov_core.get_property(d, "FULL_DEVICE_NAME") for d in info.devices}
    return info


@hookimpl
def dk_export(request: ExportRequest) -> Artifact:
    from dk_openvino.export import export_ir

    return export_ir(request)


@hookimpl
def dk_quantize(request: QuantizeRequest) -> Artifact:
    from dk_openvino.quantize import quantize_ir

    return quantize_ir(request)


@hookimpl
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
    from dk_openvino.loader import load_engine

    return load_engine(artifact, device, options)
