"""Broken IR artifacts: corrupt .xml, missing or wrong-size .bin, an IR whose inputs do not match
its manifest or the request, and unsupported devices, each a one-line error (plugin and CLI)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from dk.artifacts import Artifact, sha256_file
from dk.default_model import load_split
from dk.errors import InputError, ModelError
from dk.plugins import get_plugin_manager
from dk.sources import parse_model_arg
from dk.specs import ExportRequest

from tests.conftest import run_dk


def _copy(artifact: Artifact, tmp_path) -> Artifact:
    target = tmp_path / artifact.path.name
    shutil.copytree(artifact.path, target)
    return Artifact.load(target)


def _load_in_plugin(artifact: Artifact, device: str = "CPU"):
    """The plugin's own load hook, without core's sha256 check in front of it."""
    return get_plugin_manager().call_stage("openvino", "load", artifact=artifact, device=device, options={})


def _xml_bin(artifact: Artifact):
    return artifact.model_file, artifact.model_file.with_suffix(".bin")


@pytest.mark.parametrize("damage, message", [
    ("truncated-xml", "cannot read the IR .* mismatch"),
    ("text-xml", "cannot read the IR"),
    ("short-bin", "have 1000 bytes, expected"),
    ("long-bin", "expected .*does not belong to this .xml"),
])
def test_damaged_ir_raises_model_error_in_the_plugin(ov_fp32, tmp_path, damage, message):
    artifact = _copy(ov_fp32, tmp_path)
    xml, weights = _xml_bin(artifact)
    if damage == "truncated-xml":
        xml.write_text(xml.read_text()[: len(xml.read_text()) // 2])
    elif damage == "text-xml":
        xml.write_text("not an IR at all")
    elif damage == "short-bin":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        weights.write_bytes(weights.read_bytes() * 2)
    with pytest.raises(ModelError, match=message) as info:
        _load_in_plugin(artifact)
    assert "\n" not in str(info.value)


def test_missing_bin_raises_model_error(ov_fp32, tmp_path):
    artifact = _copy(ov_fp32, tmp_path)
    _xml_bin(artifact)[1].unlink()
    with pytest.raises(ModelError, match="is missing its file .*bin"):
        Artifact.load(artifact.path)
    with pytest.raises(ModelError, match=r"IR weights .*\.bin are missing"):
        _load_in_plugin(artifact)  # the manifest read before the file went


def test_ir_whose_inputs_differ_from_its_manifest_is_refused(ov_fp32, tmp_path):
    static = ExportRequest(source=parse_model_arg(None), out_dir=tmp_path / "static", dynamic_batch=False)
    from dk import api

    other = api.export("openvino", static)
    artifact = _copy(ov_fp32, tmp_path)
    xml, weights = _xml_bin(artifact)
    shutil.copy(other.model_file, xml)
    shutil.copy(other.model_file.with_suffix(".bin"), weights)
    manifest = json.loads((artifact.path / "dk.json").read_text())
    for entry in manifest["files"]:  # a consistent-looking manifest: only the inputs give it away
        entry.update(sha256=sha256_file(artifact.path / entry["name"]),
                     size=(artifact.path / entry["name"]).stat().st_size)
    (artifact.path / "dk.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"has inputs input\[1, 1, 8, 8\].*dk.json records input\['batch'"):
        _load_in_plugin(Artifact.load(artifact.path))


def test_request_that_does_not_fit_the_ir_raises_input_error(tmp_path):
    from dk import api

    static = api.export("openvino", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, dynamic_batch=False))
    with api.load_engine("openvino", static, "CPU") as engine:
        with pytest.raises(InputError, match=r"expected \[1, 1, 8, 8\] \(axis 0 must be 1\)"):
            engine.infer({"input": load_split("eval")[0][:4]})
        with pytest.raises(InputError, match="missing input"):
            engine.infer({"image": np.zeros((1, 1, 8, 8), np.float32)})


def _one_line_error(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_cli_corrupt_xml_is_one_line_error_and_nonzero_exit(ov_fp32, tmp_path):
    artifact = _copy(ov_fp32, tmp_path)
    xml = artifact.model_file
    xml.write_text(xml.read_text().replace("<layers>", "<layers"))
    line = _one_line_error(run_dk("run", "infer", "--plugin", "openvino", "--artifact", str(artifact.path)))
    assert "is corrupt" in line and xml.name in line


def test_cli_wrong_batch_for_static_ir_is_one_line_error(tmp_path):
    out = tmp_path / "out"
    export = run_dk("run", "export", "--plugin", "openvino", "--static", "--out", str(out), "--json")
    assert export.returncode == 0, export.stderr
    path = json.loads(export.stdout)["artifact"]["path"]
    line = _one_line_error(run_dk("run", "infer", "--plugin", "openvino", "--artifact", path, "--batch", "4"))
    assert "axis 0 must be 1" in line


@pytest.mark.parametrize("device", ["NPU", "cuda"])
def test_cli_unsupported_device_is_one_line_error(ov_fp32, tmp_path, device):
    import openvino

    if device in openvino.Core().available_devices:
        pytest.skip(f"this machine has {device}")
    line = _one_line_error(run_dk("run", "infer", "--plugin", "openvino", "--artifact", str(ov_fp32.path),
                                  "--device", device))
    assert f"device '{device}' is not available to OpenVINO here; this machine has CPU" in line
