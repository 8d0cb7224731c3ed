"""Plan naming, the engine cache key, and corrupt-plan detection through the plan-reading seam."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dk.artifacts import Artifact, BuiltModel, SourceInfo, build_artifact
from dk.specs import TensorSpec
from dk_trt.plan import GpuInfo, PlanError, engine_cache_key, engine_tool_versions, plan_name, read_artifact_plan, read_plan

ORIN = GpuInfo("Orin", "8.7")
SETTINGS = {"precision": "fp16", "profiles": [["input", [1, 1, 8, 8], [1, 1, 8, 8], [64, 1, 8, 8]]]}


def test_plan_file_is_named_by_the_convention():
    assert plan_name("v1.0_digitsnet_default_8x8_fp16_dla_disabled") == "v1.0_digitsnet_default_8x8_fp16_dla_disabled.plan"


def test_cache_key_covers_onnx_settings_tensorrt_and_gpu():
    tools = engine_tool_versions("10.3.0", ORIN, "1.17.0")
    assert tools == {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7", "onnx": "1.17.0"}
    key = engine_cache_key("a" * 64, SETTINGS, tools)
    assert key == engine_cache_key("a" * 64, dict(SETTINGS), dict(tools))
    variants = [
        engine_cache_key("b" * 64, SETTINGS, tools),
        engine_cache_key("a" * 64, {**SETTINGS, "precision": "fp32"}, tools),
        engine_cache_key("a" * 64, SETTINGS, engine_tool_versions("10.4.0", ORIN, "1.17.0")),
        engine_cache_key("a" * 64, SETTINGS, engine_tool_versions("10.3.0", GpuInfo("NVIDIA A100", "8.0"), "1.17.0")),
        engine_cache_key("a" * 64, SETTINGS, engine_tool_versions("10.3.0", GpuInfo("Orin", "8.6"), "1.17.0")),
    ]
    assert len({key, *variants}) == 6


def plan_artifact(out: Path, data: bytes, trt_version: str = "10.3.0") -> Artifact:
    """A trt artifact whose plan file holds ``data`` (the bytes TensorRT would have written)."""
    name = "v1.0_digitsnet_default_8x8_fp16_dla_disabled"

    def build(folder: Path) -> BuiltModel:
        (folder / plan_name(name)).write_bytes(data)
        return BuiltModel([plan_name(name)], "tensorrt", "fp16", [TensorSpec("input", ("batch", 1, 8, 8))],
                          [TensorSpec("logits", ("batch", 10))])

    return build_artifact(plugin="trt", out_dir=out, name=name, source=SourceInfo("default", "dk:digitsnet", "0" * 64),
                          build_options=SETTINGS, tool_versions=engine_tool_versions(trt_version, ORIN, "1.17.0"),
                          model_meta={}, build=build)


def test_an_intact_plan_is_read(tmp_path):
    data = os.urandom(4096)
    assert read_artifact_plan(plan_artifact(tmp_path, data), "10.3.0") == data


def test_truncated_plan_is_detected(tmp_path):
    artifact = plan_artifact(tmp_path, os.urandom(4096))
    with open(artifact.model_file, "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(PlanError, match=r"truncated or overwritten \(1000 bytes, the manifest says 4096\)"):
        read_artifact_plan(artifact, "10.3.0")


def test_zero_byte_plan_is_detected(tmp_path):
    artifact = plan_artifact(tmp_path, os.urandom(4096))
    artifact.model_file.write_bytes(b"")
    with pytest.raises(PlanError, match=r"is empty \(0 bytes\)"):
        read_artifact_plan(artifact, "10.3.0")
    with pytest.raises(PlanError, match="is empty"):
        read_plan(artifact.model_file)  # also without a manifest


def test_random_bytes_of_the_same_size_are_detected(tmp_path):
    artifact = plan_artifact(tmp_path, os.urandom(4096))
    artifact.model_file.write_bytes(os.urandom(4096))
    with pytest.raises(PlanError, match=r"is corrupt \(sha256 differs from dk.json\)"):
        read_artifact_plan(artifact, "10.3.0")


def test_plan_of_another_tensorrt_version_is_refused(tmp_path):
    artifact = plan_artifact(tmp_path, os.urandom(256), trt_version="10.0.1")
    with pytest.raises(PlanError, match="built with TensorRT 10.0.1, this machine has 10.3.0"):
        read_artifact_plan(artifact, "10.3.0")


def test_missing_plan_is_detected(tmp_path):
    with pytest.raises(PlanError, match="does not exist"):
        read_plan(tmp_path / "nothing.plan")


def test_cached_artifact_with_a_corrupt_plan_is_rebuilt_not_reused(tmp_path):
    first = plan_artifact(tmp_path, b"x" * 512)
    assert plan_artifact(tmp_path, b"x" * 512).reused  # same key, intact: reused
    with open(first.model_file, "r+b") as fh:
        fh.truncate(100)
    again = plan_artifact(tmp_path, b"x" * 512)
    assert not again.reused and again.model_file.read_bytes() == b"x" * 512
