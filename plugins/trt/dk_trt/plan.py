"""Plan files: the checks that need no TensorRT (presence, size, sha256, TensorRT version), and
the engine cache key over (ONNX bytes, build settings, TensorRT version, GPU name and capability).

Only :func:`dk_trt.runtime.deserialize` asks TensorRT itself; everything here runs anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import attrs

from dk.artifacts import Artifact, cache_key, sha256_file
from dk.errors import ModelError

PLAN_SUFFIX = ".plan"


class PlanError(ModelError):
    """A plan file that must not be deserialized: missing, empty, truncated, corrupt, or built by
    another TensorRT version. Export rebuilds it; load refuses it."""


@attrs.frozen
class GpuInfo:
    """The GPU an engine is built for: engines are specific to the GPU model and TensorRT version."""

    name: str
    compute_capability: str  # "8.7"
    index: int = 0


def plan_name(artifact_name: str) -> str:
    """``v1.0_digitsnet_default_8x8_fp16_dla_disabled`` -> ``...dla_disabled.plan``."""
    return f"{artifact_name}{PLAN_SUFFIX}"


def engine_tool_versions(trt_version: str, gpu: GpuInfo, onnx_version: str) -> dict[str, str]:
    """The tool versions of an engine build; with the source and settings they form the cache key."""
    return {
        "tensorrt": trt_version,
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
        "onnx": onnx_version,
    }


def engine_cache_key(onnx_sha256: str, settings: Mapping[str, Any], tools: Mapping[str, str]) -> str:
    """The key :func:`dk.artifacts.build_artifact` compares to reuse an engine."""
    return cache_key("trt", onnx_sha256, settings, tools)


def read_plan(
    path: str | os.PathLike,
    entry: Mapping[str, Any] | None = None,
    built_with: str | None = None,
    installed: str | None = None,
) -> bytes:
    """The plan's bytes after every check that needs no TensorRT, or :class:`PlanError`.

    :param entry: The manifest's file entry (``size``, ``sha256``), when there is a manifest.
    :param built_with: The TensorRT version that built the plan; ``installed`` the one here.
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"engine plan {path} does not exist; re-export it")
    size = path.stat().st_size
    if size == 0:
        raise PlanError(f"engine plan {path} is empty (0 bytes): the build was interrupted; re-export with --force")
    if entry is not None:
        if size != entry.get("size"):
            raise PlanError(
                f"engine plan {path} is truncated or overwritten ({size} bytes, the manifest says "
                f"{entry.get('size')}); re-export with --force"
            )
        if sha256_file(path) != entry.get("sha256"):
            raise PlanError(f"engine plan {path} is corrupt (sha256 differs from dk.json); re-export with --force")
    if built_with and installed and built_with != installed:
        raise PlanError(
            f"engine plan {path} was built with TensorRT {built_with}, this machine has {installed}; engines do "
            "not move between TensorRT versions: re-export it here"
        )
    return path.read_bytes()


def read_artifact_plan(artifact: Artifact, installed: str | None) -> bytes:
    """:func:`read_plan` for the plan of a trt artifact."""
    entry = next((f for f in artifact.manifest["files"] if f["name"].endswith(PLAN_SUFFIX)), None)
    if entry is None:
        raise PlanError(f"artifact {artifact.path} has no {PLAN_SUFFIX} file; export it with --plugin trt")
    built_with = artifact.manifest.get("tool_versions", {}).get("tensorrt")
    return read_plan(artifact.path / entry["name"], entry, built_with, installed)
