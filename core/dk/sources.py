"""What ``--model`` points at, and how any plugin gets ONNX from it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import attrs

from dk.artifacts import Artifact, SourceInfo, sha256_file, sha256_json
from dk.errors import ModelError
from dk.specs import ExportRequest, ModelSource

TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".pt", ".pth", ".jit")
TORCH_EXPORT_SUFFIXES = (".pt2",)
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def parse_model_arg(model: str | None, weights: str | None = None, meta: Mapping[str, Any] | None = None) -> ModelSource:
    """Classify ``--model``: None (the default), an artifact folder, an ONNX or torch file, or
    ``module.path:factory`` (imported from the current directory first, as ``python -m`` does).
    ``meta`` is what the user declared about the model (:mod:`dk.model_meta`). Raises
    :class:`ModelError` for a path that does not exist."""
    if weights is not None and not Path(weights).is_file():
        raise ModelError(f"weights file {weights} does not exist")
    meta = dict(meta or {})
    if model is None or model == "default":
        return ModelSource("default", "dk:digitsnet", meta=meta)
    path = Path(model)
    if path.is_dir():
        return ModelSource("artifact", str(path), meta=meta)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return ModelSource("onnx", str(path), meta=meta)
        if suffix in TORCH_EXPORT_SUFFIXES:
            return ModelSource("torch-export", str(path), meta=meta)
        if suffix in TORCHSCRIPT_SUFFIXES:
            return ModelSource("torchscript", str(path), weights, meta=meta)
        raise ModelError(
            f"do not know how to read {path} (suffix {suffix or 'none'}); expected .onnx, a TorchScript "
            "(.pt/.ts) or torch.export (.pt2) file, an artifact folder, or module.path:factory"
        )
    if _CALLABLE.match(model):
        return ModelSource("torch-callable", model, weights, root=os.getcwd(), meta=meta)
    raise ModelError(f"model path {model} does not exist")


@attrs.define
class OnnxModel:
    """An ONNX file ready for an ONNX-consuming plugin, with where it came from."""

    path: Path
    source: SourceInfo
    model_meta: dict[str, Any]
    model_name: str
    #: The checked model, when ``resolve_onnx(..., keep_model=True)`` loaded it anyway (:meth:`take_model`).
    loaded: Any = attrs.field(default=None, repr=False, eq=False)

    def take_model(self) -> Any:
        """The checked ``ModelProto`` of :attr:`path` (external data loaded): the one ``resolve_onnx``
        loaded to validate the file, handed over and not kept, or loaded and checked now."""
        from dk.onnx_io import load_onnx

        model, self.loaded = self.loaded, None
        return model if model is not None else load_onnx(self.path)


def default_model_meta() -> dict[str, Any]:
    from dk.default_model import metadata

    meta = metadata()
    keys = ("name", "version", "variant", "task", "labels", "preprocessing", "trained_accuracy")
    return {k: meta[k] for k in keys if k in meta}


def model_slug(name: str) -> str:
    """A model name fit for an artifact name: ``_`` separates its fields, so it may not appear."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-").lower() or "model"


def source_tag(source: ModelSource) -> str:
    """8 hex digits of sha256 over where ``source`` comes from, which artifact names carry
    (:attr:`dk.artifacts.SourceInfo.tag`): the kind and resolved path of a file, the factory with
    the folder it is imported from first, and the resolved weights file. The same file exported
    again keeps its folder (the cache key sees new bytes); ``other/net.onnx`` and ``net.onnx`` get
    two. An artifact keeps the tag of the model it was built from; the default model has none."""
    if source.kind == "default":
        return ""
    if source.kind == "artifact":
        return artifact_tag(Artifact.load(source.path))
    where: dict[str, Any] = {"kind": source.kind}
    if source.kind == "torch-callable":
        where.update(factory=source.location, root=str(Path(source.root).resolve()) if source.root else "")
    else:
        where["path"] = str(Path(source.location).resolve())
    if source.weights:
        where["weights"] = str(Path(source.weights).resolve())
    return sha256_json(where)[:8]


def artifact_tag(artifact: Artifact) -> str:
    """The source tag an artifact was named with: recorded in its manifest's ``source``; for an
    artifact from before tags, none when it came from the default model, else its folder's."""
    origin = artifact.manifest.get("source") or {}
    if "tag" in origin:
        return str(origin["tag"])
    if origin.get("kind") == "default":
        return ""
    return sha256_json({"kind": "artifact", "path": str(artifact.path.resolve())})[:8]


def artifact_model_name(artifact: Artifact) -> str:
    """The model field of an artifact's folder name (``v1.0_<model>[-<tag>]_<variant>_...``)
    without its source tag: the name an artifact's own model goes by when its manifest has none."""
    fields = artifact.name.split("_")
    if len(fields) < 3 or not fields[0].startswith("v"):
        return model_slug(artifact.name)
    tag = artifact_tag(artifact)
    model = fields[1]
    return model[: -len(tag) - 1] if tag and model.endswith(f"-{tag}") else model


def resolve_onnx(source: ModelSource, request: ExportRequest | None = None, *,
                 keep_model: bool = False) -> OnnxModel:
    """Get an ONNX file for ``source``; torch sources go through the ``torch`` plugin's export.

    ``keep_model``: keep the model loaded to validate an ONNX file in :attr:`OnnxModel.loaded`,
    for a caller that needs it next (:meth:`OnnxModel.take_model`), instead of loading it twice.
    """
    from dk.onnx_io import load_onnx

    from dk.model_meta import merge_meta

    if source.kind == "default":
        from dk.default_model import ONNX_PATH

        meta = merge_meta(default_model_meta(), source.meta)
        return OnnxModel(ONNX_PATH, SourceInfo("default", source.location, sha256_file(ONNX_PATH)), meta, meta["name"])
    if source.kind == "onnx":
        model = load_onnx(source.path)  # validates: existence, format, truncation, external data
        info = SourceInfo("onnx", str(source.path.resolve()), _onnx_fingerprint(source.path), source_tag(source))
        return OnnxModel(source.path, info, dict(source.meta), model_slug(source.meta.get("name", source.path.stem)),
                         loaded=model if keep_model else None)
    if source.kind == "artifact":
        artifact = Artifact.load(source.path)
        if artifact.format != "onnx":
            raise ModelError(
                f"artifact {source.path} holds a {artifact.format!r} model, not ONNX; point --model at an "
                "ONNX file or at the original model"
            )
        meta = merge_meta(artifact.model_meta, source.meta)
        return OnnxModel(
            artifact.model_file,
            SourceInfo("artifact", str(source.path.resolve()), artifact.manifest["files"][0]["sha256"],
                       artifact_tag(artifact)),
            meta,
            meta.get("name", artifact_model_name(artifact)),
        )
    # torch sources: the torch plugin exports them (cached like every artifact).
    from dk.plugins import get_plugin_manager

    torch_request = attrs.evolve(request or ExportRequest(source=source), source=source, precision="fp32")
    # the torch plugin refuses keys it does not know: give it only its own, not the calling plugin's
    from dk.plugin_options import SOURCE_OPTIONS

    own = {k: v for k, v in torch_request.options.items() if k in SOURCE_OPTIONS}
    torch_request = attrs.evolve(torch_request, options=own)
    artifact = get_plugin_manager().call_stage("torch", "export", request=torch_request)
    meta = merge_meta(artifact.model_meta, source.meta)
    return OnnxModel(
        artifact.model_file,
        SourceInfo(source.kind, source.location, artifact.manifest["source"]["sha256"], source_tag(source)),
        meta,
        meta.get("name", "model"),
    )


def original_source(origin: Mapping[str, Any]) -> ModelSource | None:
    """The source an artifact was built from (its manifest's ``source``), if it is still there
    unchanged: the default model, or the same ONNX file with the same sha256. Used when an
    artifact's own model cannot be read by the next tool (ORT-only fused operators)."""
    kind, location = origin.get("kind"), origin.get("location", "")
    if kind == "default":
        return ModelSource("default", location)
    if kind == "onnx" and Path(location).is_file():
        candidate = ModelSource("onnx", location)
        if _onnx_fingerprint(candidate.path) == origin.get("sha256"):
            return candidate
    return None


def _onnx_fingerprint(path: Path) -> str:
    """sha256 over the ONNX file and any external-data files beside it."""
    digests = {"model": sha256_file(path)}
    for sibling in sorted(path.parent.iterdir()):
        if sibling != path and sibling.suffix in (".data", ".bin", ".weights") and sibling.is_file():
            digests[sibling.name] = sha256_file(sibling)
    return digests["model"] if len(digests) == 1 else sha256_json(digests)
