"""dk plugin ``lpdnn``: remote engines behind an HTTP worker, and LPDNN AI-app packaging.

Thin hook functions only; the client, engine and packaging modules are imported inside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from dk.hooks import hookimpl
from dk.specs import PluginInfo

if TYPE_CHECKING:
    from dk.artifacts import Artifact
    from dk.engine import Engine
    from dk.specs import ExportRequest


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_lpdnn.aiapp import find_worker
    from dk_lpdnn.package import find_toolchain

    toolchain, worker = find_toolchain(), find_worker()
    return PluginInfo(
        name="lpdnn",
        kind="engine",
        formats_in=["onnx", "http-worker", "lpdnn-aiapp"],
        formats_out=["http-worker", "lpdnn", "lpdnn-aiapp"],
        precisions=["fp32", "fp16"],
        devices=["remote"],
        details={"lpdnn_toolchain": toolchain or "not installed (packages are written without the AI app)",
                 "lpdnn_worker": worker or "not installed (use a 'dk serve' worker with -o url=...)",
                 "url_env": "DK_LPDNN_URL"},
    )


@hookimpl
def dk_export(request: ExportRequest) -> Artifact:
    from dk_lpdnn.export import export

    return export(request)


@hookimpl
def dk_load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Engine:
    from dk_lpdnn.engine import load_engine

    return load_engine(artifact, device, options)
