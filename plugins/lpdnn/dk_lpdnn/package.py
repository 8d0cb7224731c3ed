"""LPDNN packaging: ONNX plus the algorithm/challenge/deployment YAML files that Bonseyes'
``onnx2lpdnn`` takes, and the LPDNN toolchain's AI app when the toolchain is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from dk.artifacts import Artifact, BuiltModel, SourceInfo, artifact_name, build_artifact, input_hw, sha256_file
from dk.errors import DkError, ModelError
from dk.specs import ExportRequest, TensorSpec

PLUGIN = "lpdnn"
TOOLCHAIN_ENV = "DK_LPDNN_TOOLCHAIN"
TOOLCHAIN_NAMES = ("onnx2lpdnn",)
ENGINES = ("onnxruntime", "lne", "tensorrt", "ncnn")
LPDNN_PRECISION = {"fp32": "F32", "fp16": "F16"}
NO_TOOLCHAIN = f"not found (set ${TOOLCHAIN_ENV} or put onnx2lpdnn on PATH)"
AIAPP_DIR = "aiapp"
AIAPP_CONFIG = "ai_app_config.json"


def find_toolchain() -> str | None:
    """The LPDNN ``onnx2lpdnn`` tool: ``$DK_LPDNN_TOOLCHAIN`` or on PATH."""
    explicit = os.environ.get(TOOLCHAIN_ENV)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((found for name in TOOLCHAIN_NAMES if (found := shutil.which(name))), None)


def export_package(request: ExportRequest) -> Artifact:
    from dk.onnx_io import io_specs, load_onnx
    from dk.sources import resolve_onnx

    engine = request.options.get("engine", "onnxruntime").strip().lower()
    if engine not in ENGINES:
        raise DkError(f"option engine={engine} is not one of {', '.join(ENGINES)}")
    if request.precision not in LPDNN_PRECISION:
        raise DkError(f"the lpdnn export makes fp32 or fp16 packages; precision {request.precision} needs "
                      "LPDNN's own quantization workflow")
    deployment = request.options.get("deployment_package", "x86_64-ubuntu20")
    onnx_model = resolve_onnx(request.source, request)
    inputs, outputs = io_specs(load_onnx(onnx_model.path, load_external_data=False))
    meta = onnx_model.model_meta
    name = artifact_name(onnx_model.model_name, input_hw(inputs[0]) if inputs else None, request.precision,
                         version=str(meta.get("version", "1.0")), variant=str(meta.get("variant", "default")),
                         suffix="lpdnn", source_tag=onnx_model.source.tag)
    toolchain = find_toolchain()
    files = {"algorithm.yml": algorithm_yaml(name, meta, inputs, outputs, request.precision),
             "challenge.yml": challenge_yaml(meta, inputs),
             "deployment.yml": deployment_yaml(engine, request.precision, deployment)}

    def build(folder: Path) -> BuiltModel:
        shutil.copyfile(onnx_model.path, folder / "model.onnx")
        for file, text in files.items():
            (folder / file).write_text(text)
        written = ["model.onnx", *files]
        extra: dict[str, Any] = {"engine": engine, "deployment_package": deployment,
                                 "toolchain": toolchain or NO_TOOLCHAIN}
        if toolchain:
            written += run_toolchain(toolchain, folder, engine, request.precision, deployment)
        return BuiltModel(written, "lpdnn", request.precision, inputs, outputs, extra)

    return build_artifact(
        plugin=PLUGIN, out_dir=request.out_dir, name=name, source=onnx_model.source,
        build_options={**request.build_options(), "engine": engine, "deployment_package": deployment},
        tool_versions={"onnx2lpdnn": toolchain or "absent"}, model_meta=meta, build=build, force=request.force,
    )


def run_toolchain(tool: str, folder: Path, engine: str, precision: str, deployment: str) -> list[str]:
    """Call ``onnx2lpdnn`` as Bonseyes' AI assets do; returns the files it wrote (relative names)."""
    out = folder / AIAPP_DIR
    command = [tool, "--engine", engine, "--precision", LPDNN_PRECISION[precision],
               "--algorithm-file", str(folder / "algorithm.yml"), "--challenge-file", str(folder / "challenge.yml"),
               "--deployment-file", str(folder / "deployment.yml"), "--deployment-package", deployment,
               "--output-dir", str(out)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except OSError as exc:
        raise DkError(f"cannot run the LPDNN toolchain {Path(tool).name}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DkError(f"the LPDNN toolchain failed (exit {proc.returncode}): {tail[0][:300]}")
    if not (out / AIAPP_CONFIG).is_file():
        raise DkError(f"the LPDNN toolchain wrote no {AIAPP_CONFIG}; check its deployment package {deployment}")
    return sorted(str(p.relative_to(folder)) for p in out.rglob("*") if p.is_file())


def export_aiapp(request: ExportRequest) -> Artifact:
    """An artifact pointing at an existing LPDNN AI app (``ai_app_config.json`` + deployment package)."""
    config = Path(request.options["app_config"]).resolve()
    if not config.is_file():
        raise ModelError(f"LPDNN app config {request.options['app_config']} does not exist")
    deployment = request.options.get("deployment_package", "x86_64-ubuntu20")
    record = {"app_config": str(config), "deployment_package": deployment}
    name = artifact_name(config.parent.name.replace("_", "-") or "aiapp", None, request.precision, suffix="lpdnn-aiapp")

    def build(folder: Path) -> BuiltModel:
        (folder / "aiapp.yml").write_text(to_yaml(record))
        return BuiltModel(["aiapp.yml"], "lpdnn-aiapp", request.precision, [], [], record)

    return build_artifact(
        plugin=PLUGIN, out_dir=request.out_dir, name=name,
        source=SourceInfo("lpdnn-aiapp", str(config), sha256_file(config)), build_options=record,
        tool_versions={}, model_meta={}, build=build, force=request.force,
    )


# -- the YAML files -----------------------------------------------------------------------------


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "shape": [d if isinstance(d, int) else -1 for d in spec.shape], "dtype": spec.dtype}


def algorithm_yaml(name: str, meta: Mapping[str, Any], inputs: list[TensorSpec], outputs: list[TensorSpec],
                   precision: str) -> str:
    return to_yaml({
        "name": name, "version": str(meta.get("version", "1.0")), "task": meta.get("task", "unknown"),
        "challenge": "challenge.yml",
        "network": {"file": "model.onnx", "format": "onnx", "precision": LPDNN_PRECISION[precision],
                    "inputs": [_tensor(s) for s in inputs], "outputs": [_tensor(s) for s in outputs]},
        "preprocessing": dict(meta.get("preprocessing") or {}),
        "postprocessing": {"task": meta.get("task", "unknown"), "top_k": int(meta.get("top_k", 5))},
    })


def challenge_yaml(meta: Mapping[str, Any], inputs: list[TensorSpec]) -> str:
    pre = meta.get("preprocessing") or {}
    hw = input_hw(inputs[0]) if inputs else None
    return to_yaml({
        "task": meta.get("task", "unknown"), "classes": list(meta.get("labels") or []),
        "input": {"type": "image", "formats": ["jpeg", "png"], "colour": pre.get("colour", "rgb"),
                  "size": list(hw) if hw else None},
        "output": {"format": "json", "items": "top_k" if meta.get("task") == "classification" else "raw"},
    })


def deployment_yaml(engine: str, precision: str, deployment: str) -> str:
    return to_yaml({"engine": engine, "precision": LPDNN_PRECISION[precision], "deployment_package": deployment,
                    "worker": {"protocol": "http", "endpoints": ["/inference", "/v2/models/{name}/infer"]}})


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (enough for these files, no dependency)."""
    pad = "  " * indent
    lines = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        head = f"{pad}{key}:" if isinstance(data, dict) else f"{pad}-"
        if isinstance(value, (dict, list)) and value and not _flat_list(value):
            lines.append(head)
            lines.append(to_yaml(value, indent + 1).rstrip("\n"))
        else:
            lines.append(f"{head} {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


def _scalar(value: Any) -> str:
    import json

    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))
