"""NNCF int8: calibration recorded in the manifest, accuracy within a point of fp32, sources,
and one-line errors for what NNCF cannot do."""

from __future__ import annotations

import shutil

import numpy as np
import openvino
import pytest

pytest.importorskip("nncf", reason="int8 with the openvino plugin needs NNCF: pip install nncf")

from dk import api  # noqa: E402
from dk.default_model import ONNX_PATH, load_split  # noqa: E402
from dk.errors import DkError  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import QuantizeRequest  # noqa: E402


def _accuracy(artifact) -> float:
    x, y = load_split("eval")
    with api.load_engine("openvino", artifact, "CPU") as engine:
        logits = engine.infer({"input": x})["logits"]
    return float(np.mean(logits.argmax(1) == y))


def test_int8_artifact_holds_fake_quantize_and_records_its_calibration(ov_int8):
    m = ov_int8.manifest
    assert (m["format"], m["precision"]) == ("openvino-ir", "int8")
    assert ov_int8.path.name == "v1.0_digitsnet_default_8x8_int8"
    calib = m["options"]["calibration"]
    samples = len(load_split("calib")[0])
    assert (calib["name"], calib["samples"], calib["batches"]) == ("digits-calib", samples, -(-samples // 16))
    assert m["tool_versions"]["nncf"] and m["extra"]["method"] == "nncf-ptq"
    ops = openvino.Core().read_model(str(ov_int8.model_file)).get_ops()
    assert m["extra"]["fake_quantize_nodes"] == sum(op.get_type_name() == "FakeQuantize" for op in ops) >= 4


def test_int8_accuracy_is_within_one_point_of_fp32(ov_fp32, ov_int8):
    fp32, int8 = _accuracy(ov_fp32), _accuracy(ov_int8)
    assert fp32 >= 0.98 and int8 >= fp32 - 0.01


def test_quantize_from_the_fp32_ir_artifact(ov_fp32, ov_int8, tmp_path):
    request = QuantizeRequest(source=parse_model_arg(str(ov_fp32.path)), out_dir=tmp_path)
    int8 = api.quantize("openvino", request)  # the IR's recorded source is the default model
    assert int8.manifest["source"]["kind"] == "artifact"
    assert int8.manifest["options"]["calibration"]["sha256"] == ov_int8.manifest["options"]["calibration"]["sha256"]
    assert abs(_accuracy(int8) - _accuracy(ov_int8)) <= 0.01


def test_changed_calibration_set_rebuilds(ov_artifacts_dir, ov_int8):
    x = load_split("calib")[0][:64]
    request = QuantizeRequest(source=parse_model_arg(None), out_dir=ov_artifacts_dir / "other",
                              calibration=lambda: ({"input": x[i : i + 16]} for i in range(0, 64, 16)),
                              calibration_name="first-64")
    first = api.quantize("openvino", request)
    assert first.manifest["options"]["calibration"]["samples"] == 64
    assert first.manifest["cache_key"] != ov_int8.manifest["cache_key"]
    assert api.quantize("openvino", request).reused


@pytest.mark.parametrize("change, message", [
    ({"method": "dynamic"}, "method 'dynamic' is not supported by openvino"),
    ({"precision": "fp16"}, "int8 only"),
    ({"options": {"preset": "fastest"}}, "preset=fastest is not one of performance, mixed"),
])
def test_unsupported_quantize_requests_raise_one_line_errors(tmp_path, change, message):
    request = QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path, **change)
    with pytest.raises(DkError, match=message) as info:
        api.quantize("openvino", request)
    assert "\n" not in str(info.value)


def test_onnx_file_without_calibration_data_asks_for_it(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(ONNX_PATH, path)
    with pytest.raises(DkError, match="needs calibration data .*--data calib.npz"):
        api.quantize("openvino", QuantizeRequest(source=parse_model_arg(str(path)), out_dir=tmp_path))
