"""``dk run export --plugin lpdnn``: an artifact that points at a worker URL, an LPDNN AI-app
config, or (by default) an LPDNN deployment package built from ONNX."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dk.artifacts import Artifact, BuiltModel, SourceInfo, artifact_name, build_artifact, sha256_json
from dk.sources import model_slug
from dk.specs import ExportRequest
from dk_lpdnn.engine import WORKER_FILE, client_options, specs_from_metadata
from dk_lpdnn.options import EXPORT_OPTIONS, URL_ENV, check_options

PLUGIN = "lpdnn"


def export(request: ExportRequest) -> Artifact:
    check_options(request.options, EXPORT_OPTIONS, "export")
    if request.options.get("app_config"):
        from dk_lpdnn.package import export_aiapp

        return export_aiapp(request)
    url = request.options.get("url") or os.environ.get(URL_ENV)
    if url:
        return export_worker(request, url)
    from dk_lpdnn.package import export_package

    return export_package(request)


def export_worker(request: ExportRequest, url: str) -> Artifact:
    """An ``http-worker`` artifact: the URL, the model name and the worker's metadata at export time."""
    from dk_lpdnn.client import WorkerClient

    kwargs = client_options({k: v for k, v in request.options.items() if k in ("timeout", "retries")})
    client = WorkerClient(url, **kwargs)
    try:
        model = client.model_name(request.options.get("model"))
        metadata = client.metadata(model)
    finally:
        client.close()
    params = metadata.get("parameters") or {}
    inputs = specs_from_metadata(metadata["inputs"], params.get("dk_inputs"))
    outputs = specs_from_metadata(metadata.get("outputs") or [], None)
    precision = str(params.get("precision") or request.precision)
    hw = None
    if inputs and len(inputs[0].shape) == 4 and all(isinstance(d, int) for d in inputs[0].shape[2:]):
        hw = (int(inputs[0].shape[2]), int(inputs[0].shape[3]))
    from dk.model_meta import merge_meta

    meta: dict[str, Any] = params.get("model") if isinstance(params.get("model"), dict) else {}
    meta = merge_meta(meta, request.source.meta)  # what the user declared (--labels...) wins
    name = artifact_name(model_slug(model), hw, precision, version=str(meta.get("version", "1.0")),
                         variant=str(meta.get("variant", "default")), suffix="http-worker")
    record = {"url": client.url, "model": model, "protocol": "oip-v2", "metadata": metadata}

    def build(folder: Path) -> BuiltModel:
        (folder / WORKER_FILE).write_text(json.dumps(record, indent=2) + "\n")
        return BuiltModel([WORKER_FILE], "http-worker", precision, inputs, outputs,
                          {"url": client.url, "model": model})

    source = SourceInfo("http-worker", client.url, str(params.get("source_sha256") or sha256_json(metadata)))
    return build_artifact(
        plugin=PLUGIN, out_dir=request.out_dir, name=name, source=source,
        build_options={"url": client.url, "model": model, "metadata": sha256_json(metadata)},
        tool_versions={}, model_meta=meta, build=build, force=request.force,
    )
