"""dk plugin ``torch``: torch model loading, torch -> ONNX export and the torch reference engine.

The hooks are thin: the work lives in :mod:`dk_torch.export` and :mod:`dk_torch.engine`, imported
only when a hook runs, so that importing this module (``dk doctor``, ``dk --help``) never imports
torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING, Mapping

from dk.hooks import hookimpl

if TYPE_CHECKING:
    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest, PluginInfo

TORCH_PIN = "torch==2.13.0"


@hookimpl
def dk_describe(probe: bool) -> "PluginInfo":
    from dk.specs import PluginInfo

    info = PluginInfo(
        name="torch",
        kind="exporter",
        formats_in=["torch", "torchscript", "torch-export"],
        formats_out=["onnx"],
        precisions=["fp32", "fp16"],
        devices=["cpu", "cuda"],
    )
    for package, install in (("torch", TORCH_PIN), ("onnx", "onnx")):
        if importlib.util.find_spec(package) is None:
            info.available, info.status = False, "missing-dependency"
            info.reason = f"{package} is not installed: pip install {install}"
            return info
        info.versions[package] = importlib.metadata.version(package)
    if probe:
        _probe(info)
    return info


def _probe(info: "PluginInfo") -> None:
    """Import torch and list the devices it can really use here."""
    import torch

    cuda = torch.cuda.is_available()
    info.devices = ["cpu", "cuda"] if cuda else ["cpu"]
    info.details["cuda_available"] = cuda
    info.details["cuda_build"] = torch.version.cuda or "none (CPU-only build)"
    if cuda:
        info.details["cuda_devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]


@hookimpl
def dk_export(request: "ExportRequest") -> "Artifact":
    from dk_torch.export import export_onnx
    from dk_torch.options import check_options

    check_options(request.options)
    return export_onnx(request)


@hookimpl
def dk_load_engine(artifact: "Artifact", device: str, options: Mapping[str, str]) -> "Engine":
    from dk_torch.engine import load_torch_engine
    from dk_torch.options import check_options

    check_options(options)
    return load_torch_engine(artifact, device, options)
