"""``--allow-upload``: an ONNX model streamed into the artifact store, validated, renamed into place.

Only ONNX is accepted (checked with :func:`dk.onnx_io.load_onnx`); pickles and zip archives (torch
``.pt``) are refused before parsing, and the name cannot leave the store's ``uploads/`` folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

from dk.errors import ModelError
from dk.serve.limits import HttpError, byte_count
from dk.serve.worker import ModelInfo

UPLOAD_PLUGIN = "uploads"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PICKLE = re.compile(rb"^\x80[\x02-\x05]")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):  # match() with $ lets a final newline through
        raise HttpError(400, "model name must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    return name


async def store_upload(name: str, chunks: AsyncIterator[bytes], declared: str | None, store: Path,
                       limit: int, idle_timeout: float | None = None) -> dict[str, Any]:
    """Stream the body to a temporary file in the store, validate it, and publish it as an artifact;
    408 when no byte of it has come for ``idle_timeout`` s (it may take longer in all)."""
    from dk.serve.bodies import stall_limit

    check_name(name)
    length = byte_count(declared)
    if length is not None and length > limit:
        raise HttpError(413, f"model of {length} bytes exceeds the upload limit of {limit} bytes")
    root = (Path(store) / UPLOAD_PLUGIN).resolve()
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".upload-{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(part, "wb") as fh, stall_limit(idle_timeout) as deadline:
            async for chunk in chunks:
                deadline.restart()
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, f"model exceeds the upload limit of {limit} bytes")
                digest.update(chunk)
                fh.write(chunk)
        return await asyncio.get_running_loop().run_in_executor(None, _publish, name, part, root, digest.hexdigest())
    finally:
        part.unlink(missing_ok=True)


def _publish(name: str, part: Path, root: Path, sha256: str) -> dict[str, Any]:
    from dk.artifacts import BuiltModel, SourceInfo, build_artifact
    from dk.onnx_io import io_specs, load_onnx

    with open(part, "rb") as fh:
        head = fh.read(4)
    if _PICKLE.match(head) or head.startswith(b"PK\x03\x04"):
        raise HttpError(400, "upload is a pickle or zip archive, not ONNX; only ONNX models are accepted")
    try:
        model = load_onnx(part, load_external_data=False)
    except ModelError as exc:
        raise HttpError(400, f"upload is not a valid ONNX model: {str(exc).replace(str(part), 'upload')}") from None
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    if any(uses_external_data(t) for t in _get_all_tensors(model)):
        raise HttpError(400, "upload refers to external data files; upload a self-contained ONNX model")
    inputs, outputs = io_specs(model)
    final = (root / name).resolve()
    if final.parent != root:
        raise HttpError(400, "model name must not contain path separators")

    def build(folder: Path) -> BuiltModel:
        shutil.copyfile(part, folder / "model.onnx")
        return BuiltModel(["model.onnx"], "onnx", "fp32", inputs, outputs)

    artifact = build_artifact(
        plugin=UPLOAD_PLUGIN, out_dir=root.parent, name=name, source=SourceInfo("upload", name, sha256),
        build_options={}, tool_versions={}, model_meta={}, build=build, force=True,
    )
    return {"name": artifact.name, "sha256": sha256, "format": "onnx",
            "inputs": [s.to_json() for s in inputs], "outputs": [s.to_json() for s in outputs]}


def open_uploaded(name: str, plugin: str, config: Any) -> tuple[Any, Any]:
    """Build the uploaded model ``name`` with the serving plugin (cached in the store like every
    artifact) and open it on the configured device: (engine, ModelInfo)."""
    from dk import api, pipeline
    check_name(name)
    folder = (Path(config.store) / UPLOAD_PLUGIN / name).resolve()
    if not (folder / "dk.json").is_file():
        raise HttpError(404, f"no uploaded model {name!r}; upload it first: POST /v2/repository/models/{name}/upload")
    if not plugin:
        raise HttpError(400, "this server does not know which plugin serves it, so it cannot load another model")
    try:
        options = pipeline.BuildOptions(model=str(folder), out=Path(config.store), device=config.device,
                                        options=dict(config.engine_options))
        built = pipeline.build(plugin, "fp32", options)
        engine = api.load_engine(plugin, built, config.device, config.engine_options)
    except ModelError as exc:
        raise HttpError(400, f"uploaded model {name!r} cannot be served: {str(exc).replace(str(folder), name)}") from None
    return engine, ModelInfo.from_artifact(built, plugin, name)
