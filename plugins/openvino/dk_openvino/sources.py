"""The ``openvino.Model`` to export or quantize for whatever ``--model`` points at."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from dk.artifacts import Artifact, SourceInfo
from dk.errors import ModelError
from dk.sources import artifact_tag, original_source
from dk.specs import ExportRequest, ModelSource

from dk_openvino.ir import FORMAT, convert_onnx, read_ir


@attrs.define
class SourceModel:
    """A model read into OpenVINO, where it came from, and its name and metadata for the artifact."""

    model: Any  # openvino.Model
    source: SourceInfo
    model_meta: dict[str, Any]
    model_name: str
    origin: str  # the kind of the original source ("default", "onnx", ...): whether default data apply
    precision: str = "fp32"


def load_source(source: ModelSource, request: ExportRequest | None = None) -> SourceModel:
    """Read ``source`` into OpenVINO: our own IR artifacts directly, anything else through ONNX
    (torch sources via the torch plugin's export, see :func:`dk.sources.resolve_onnx`)."""
    from dk.sources import resolve_onnx

    if source.kind == "artifact":
        artifact = Artifact.load(source.path)
        from dk.model_meta import merge_meta

        found = None
        if artifact.format == FORMAT:
            found = _from_ir_artifact(artifact)
        elif artifact.format == "onnx" and artifact.manifest.get("extra", {}).get("op_domains"):
            found = _from_fused_onnx_artifact(artifact, request)
        if found is not None:  # with what the user declared (--labels...) over the artifact's own
            return attrs.evolve(found, model_meta=merge_meta(found.model_meta, source.meta))
    onnx_model = resolve_onnx(source, request)
    origin = source.kind
    if source.kind == "artifact":
        origin = Artifact.load(source.path).manifest.get("source", {}).get("kind", "artifact")
    return SourceModel(convert_onnx(onnx_model.path), onnx_model.source, onnx_model.model_meta,
                       onnx_model.model_name, origin)


def _from_ir_artifact(artifact: Artifact) -> SourceModel:
    artifact.verify()
    entry = artifact.manifest["files"][0]
    sizes = {f["name"]: f["size"] for f in artifact.manifest["files"]}
    bin_size = sizes.get(Path(entry["name"]).with_suffix(".bin").name)
    meta = artifact.model_meta
    return SourceModel(
        read_ir(artifact.model_file, bin_size),
        SourceInfo("artifact", str(artifact.path.resolve()), entry["sha256"], artifact_tag(artifact)),
        meta,
        meta.get("name", artifact.name),
        artifact.manifest.get("source", {}).get("kind", "artifact"),
        artifact.precision,
    )


def _from_fused_onnx_artifact(artifact: Artifact, request: ExportRequest | None) -> SourceModel:
    """An ONNX Runtime artifact optimised into ``com.microsoft`` fused ops, which OpenVINO cannot
    read: use the model it was built from, with its shapes."""
    from dk.sources import resolve_onnx

    from dk_openvino.shapes import apply_shapes

    origin = artifact.manifest.get("source", {})
    original = original_source(origin)
    if original is None:
        raise ModelError(
            f"artifact {artifact.path} holds ONNX Runtime-specific fused ops ({', '.join(artifact.manifest['extra']['op_domains'])}) "
            f"and its source {origin.get('location', '?')} is gone or changed; give the original model with --model"
        )
    onnx_model = resolve_onnx(original, request)
    model = convert_onnx(onnx_model.path)
    options = artifact.manifest.get("options", {})
    shapes = {k: tuple(v) for k, v in (options.get("shapes") or {}).items()}
    apply_shapes(model, shapes, _ranges(options, "min_shapes"), _ranges(options, "max_shapes"),
                 bool(options.get("dynamic_batch", True)), bool(options.get("dynamic_hw", False)))
    meta = artifact.model_meta
    source = SourceInfo("artifact", str(artifact.path.resolve()), artifact.manifest["files"][0]["sha256"],
                        artifact_tag(artifact))
    return SourceModel(model, source, meta, meta.get("name", onnx_model.model_name), original.kind)


def _ranges(options: Mapping[str, Any], key: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in (options.get(key) or {}).items()}


