"""ort quantize: static QDQ PTQ with calibration, accuracy, dynamic quantization, sources."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from dk import api
from dk.default_model import ONNX_PATH, load_split
from dk.errors import DkError, UsageError
from dk.sources import parse_model_arg, source_tag
from dk.specs import QuantizeRequest


def accuracy(artifact) -> float:
    x, y = load_split("eval")
    with api.load_engine("ort", artifact) as engine:
        return float((engine.infer({"input": x})["logits"].argmax(1) == y).mean())


def ops(artifact) -> list[str]:
    return [n.op_type for n in onnx.load(str(artifact.model_file)).graph.node]


def test_static_int8_is_qdq_with_calibration_recorded(int8_artifact):
    assert int8_artifact.name == "v1.0_digitsnet_default_8x8_int8"
    assert (int8_artifact.format, int8_artifact.precision) == ("onnx", "int8")
    graph_ops = ops(int8_artifact)
    assert graph_ops.count("QuantizeLinear") >= 4 and graph_ops.count("DequantizeLinear") >= 8
    options = int8_artifact.manifest["options"]
    assert options["method"] == "static" and options["per_channel"] is True
    assert options["activations"] == "uint8"
    assert options["calibration"]["name"] == "digits-calib"
    assert (options["calibration"]["samples"], options["calibration"]["batches"]) == (128, 8)
    assert int8_artifact.manifest["inputs"][0]["shape"] == ["batch", 1, 8, 8]


def test_int8_accuracy_within_one_point_of_fp32(int8_artifact, fp32_artifact):
    fp32, int8 = accuracy(fp32_artifact), accuracy(int8_artifact)
    assert fp32 > 0.95
    assert abs(fp32 - int8) <= 0.01, (fp32, int8)


def test_quantizing_the_ort_artifact_quantizes_its_original(int8_artifact, fp32_artifact, tmp_path):
    # The fp32 artifact holds ORT-only FusedConv nodes; quantize goes back to the default model.
    from_artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(str(fp32_artifact.path)),
                                                        out_dir=tmp_path))
    assert from_artifact.manifest["source"]["kind"] == "artifact"
    assert ops(from_artifact) == ops(int8_artifact)
    x, _ = load_split("eval")
    with api.load_engine("ort", from_artifact) as a, api.load_engine("ort", int8_artifact) as b:
        np.testing.assert_array_equal(a.infer({"input": x})["logits"], b.infer({"input": x})["logits"])


def test_dynamic_quantization(tmp_path, fp32_artifact):
    artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path, method="dynamic"))
    graph_ops = ops(artifact)
    assert "DynamicQuantizeLinear" in graph_ops and "MatMulInteger" in graph_ops
    assert "QuantizeLinear" not in graph_ops
    assert artifact.manifest["options"]["method"] == "dynamic"
    assert artifact.manifest["options"]["calibration"] is None
    assert abs(accuracy(artifact) - accuracy(fp32_artifact)) <= 0.01


def test_onnx_file_without_calibration_is_refused_unless_dynamic_is_asked(tmp_path):
    """No silent fall-back to dynamic int8 (often many times slower than fp32 on a CNN)."""
    source = tmp_path / "digits.onnx"
    source.write_bytes(ONNX_PATH.read_bytes())
    with pytest.raises(UsageError, match=r"needs calibration data for this model: pass --data calib.npz .* "
                                         r"or --method dynamic"):
        api.quantize("ort", QuantizeRequest(source=parse_model_arg(str(source)), out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(str(source)), out_dir=tmp_path / "out",
                                                   method="dynamic"))
    assert artifact.manifest["options"]["method"] == "dynamic"
    assert artifact.name == f"v1.0_digits-{source_tag(parse_model_arg(str(source)))}_default_8x8_int8"


def test_custom_calibration_is_fingerprinted(tmp_path):
    x, _ = load_split("calib")

    def calibration(scale):
        return lambda: ({"input": x[i : i + 32] * np.float32(scale)} for i in range(0, 64, 32))

    request = QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path, calibration=calibration(1.0),
                              calibration_name="mine")
    first = api.quantize("ort", request)
    calib = first.manifest["options"]["calibration"]
    assert (calib["name"], calib["samples"], calib["batches"]) == ("mine", 64, 2)
    assert api.quantize("ort", request).reused
    request.calibration = calibration(0.5)  # same name, other data: the cache must not match
    second = api.quantize("ort", request)
    assert not second.reused
    assert second.manifest["options"]["calibration"]["sha256"] != calib["sha256"]


def test_empty_calibration_and_unsupported_requests_are_refused(tmp_path):
    source = parse_model_arg(None)
    with pytest.raises(DkError, match="calibration set is empty"):
        api.quantize("ort", QuantizeRequest(source=source, out_dir=tmp_path, calibration=lambda: iter(())))
    with pytest.raises(DkError, match="int8 only"):
        api.quantize("ort", QuantizeRequest(source=source, out_dir=tmp_path, precision="fp16"))
    with pytest.raises(DkError, match="method 'qat' is not supported"):
        api.quantize("ort", QuantizeRequest(source=source, out_dir=tmp_path, method="qat"))


def test_a_torch_callable_is_quantized_straight_from_its_shapes(tmp_path):
    """``dk run quantize --model pkg:factory --shapes ...`` without exporting first."""
    pytest.importorskip("torch", reason="torch is not installed: no torch sources")
    from dk.pipeline import BuildOptions, quantize

    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((4, 3, 32, 32), dtype=np.float32))
    opts = BuildOptions(model="dk_torch.models:resnet18_like", shapes={"input": (1, 3, 32, 32)}, out=tmp_path,
                        data=str(tmp_path / "calib.npz"), calib_size=4)
    artifact = quantize("ort", opts)
    assert (artifact.precision, artifact.manifest["options"]["method"]) == ("int8", "static")
    assert [s.shape for s in artifact.inputs] == [("batch", 3, 32, 32)]
    ops = {node.op_type for node in onnx.load(str(artifact.model_file)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    without_data = quantize("ort", BuildOptions(model=opts.model, shapes=opts.shapes, out=tmp_path / "d",
                                                method="dynamic"))
    assert without_data.manifest["options"]["method"] == "dynamic"  # asked for: dynamic int8 without data


def test_calibrator_progress_stays_off_json_stdout(tmp_path):
    """ONNX Runtime's entropy/percentile calibrators print progress; ``--json`` stdout stays one document."""
    import json

    from tests.conftest import run_dk

    result = run_dk("run", "quantize", "--plugin", "ort", "-o", "calibrate=percentile", "--out", str(tmp_path),
                    "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["artifact"]["options"]["calibrate"] == "percentile"
    assert "Finding optimal threshold" in result.stderr
