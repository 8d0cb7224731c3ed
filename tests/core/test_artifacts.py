"""Artifacts: naming, manifest, atomic writes, cache reuse and rebuilds."""

from __future__ import annotations

import json

import pytest

from dk.artifacts import Artifact, BuiltModel, SourceInfo, artifact_name, build_artifact
from dk.errors import ModelError
from dk.specs import TensorSpec

SOURCE = SourceInfo("onnx", "/models/m.onnx", "ab" * 32)


def _builder(calls: list, payload: bytes = b"model-bytes"):
    def build(folder):
        calls.append(folder)
        (folder / "m.onnx").write_bytes(payload)
        return BuiltModel(["m.onnx"], "onnx", "fp32", [TensorSpec("input", ("batch", 3), "float32")],
                          [TensorSpec("out", ("batch", 2), "float32")])
    return build


def _build(tmp_path, calls, options=None, versions=None, force=False, payload=b"model-bytes"):
    return build_artifact(
        plugin="x", out_dir=tmp_path, name="v1.0_m_default_8x8_fp32", source=SOURCE,
        build_options=options or {"opset": 17}, tool_versions=versions or {"lib": "1.0"},
        model_meta={"task": "classification"}, build=_builder(calls, payload), force=force,
    )


def test_name_follows_the_bonseyes_convention():
    assert artifact_name("resnet18", (224, 224), "fp16", suffix="dla_disabled") == \
        "v1.0_resnet18_default_224x224_fp16_dla_disabled"
    assert artifact_name("yolox_s", (640, 640), "int8") == "v1.0_yolox_s_default_640x640_int8"


def test_manifest_records_what_was_built(tmp_path):
    artifact = _build(tmp_path, [])
    manifest = json.loads((tmp_path / "x" / "v1.0_m_default_8x8_fp32" / "dk.json").read_text())
    assert manifest["schema"] == "dk.artifact/1"
    assert manifest["format"] == "onnx" and manifest["precision"] == "fp32"
    assert manifest["inputs"] == [{"name": "input", "shape": ["batch", 3], "dtype": "float32"}]
    assert manifest["source"]["sha256"] == "ab" * 32
    assert manifest["files"][0]["size"] == len(b"model-bytes")
    assert manifest["tool_versions"] == {"lib": "1.0"}
    assert manifest["created_at"].endswith("+00:00")
    assert artifact.model_file.read_bytes() == b"model-bytes"
    assert artifact.inputs[0].shape == ("batch", 3)


def test_identical_inputs_reuse_the_cached_artifact(tmp_path):
    calls: list = []
    first = _build(tmp_path, calls)
    second = _build(tmp_path, calls)
    assert len(calls) == 1 and second.reused and not first.reused


@pytest.mark.parametrize("change", [{"options": {"opset": 18}}, {"versions": {"lib": "1.1"}}, {"force": True}])
def test_changed_options_or_versions_rebuild(tmp_path, change):
    calls: list = []
    _build(tmp_path, calls)
    rebuilt = _build(tmp_path, calls, **change)
    assert len(calls) == 2 and not rebuilt.reused


def test_corrupted_cached_file_is_rebuilt(tmp_path):
    calls: list = []
    artifact = _build(tmp_path, calls)
    artifact.model_file.write_bytes(b"model-bytEs")  # same size, different content
    again = _build(tmp_path, calls)
    assert len(calls) == 2 and again.model_file.read_bytes() == b"model-bytes"


def test_failed_build_leaves_nothing_and_keeps_the_previous_artifact(tmp_path):
    _build(tmp_path, [])

    def broken(folder):
        (folder / "m.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_artifact(plugin="x", out_dir=tmp_path, name="v1.0_m_default_8x8_fp32", source=SOURCE,
                       build_options={"opset": 99}, tool_versions={}, model_meta={}, build=broken)
    folder = tmp_path / "x"
    assert sorted(p.name for p in folder.iterdir()) == ["v1.0_m_default_8x8_fp32"]
    assert (folder / "v1.0_m_default_8x8_fp32" / "m.onnx").read_bytes() == b"model-bytes"


def test_interrupted_first_build_leaves_no_folder(tmp_path):
    def broken(folder):
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError):
        build_artifact(plugin="x", out_dir=tmp_path, name="n", source=SOURCE, build_options={},
                       tool_versions={}, model_meta={}, build=broken)
    assert list(tmp_path.iterdir()) == []  # not even the plugin folder it made


@pytest.mark.parametrize("content, message", [
    (None, "has no dk.json"), ("{not json", "not valid JSON"), ('{"schema": "other"}', "not a dk.artifact/1"),
])
def test_loading_a_bad_artifact_folder_says_what_is_wrong(tmp_path, content, message):
    if content is not None:
        (tmp_path / "dk.json").write_text(content)
    with pytest.raises(ModelError, match=message):
        Artifact.load(tmp_path)


def test_loading_an_artifact_with_a_missing_file_fails(tmp_path):
    artifact = _build(tmp_path, [])
    artifact.model_file.unlink()
    with pytest.raises(ModelError, match="missing its file m.onnx"):
        Artifact.load(artifact.path)


def test_verify_detects_a_file_changed_after_the_build(tmp_path):
    artifact = _build(tmp_path, [])
    artifact.verify()
    artifact.model_file.write_bytes(b"model")
    with pytest.raises(ModelError, match="is corrupt"):
        artifact.verify()
