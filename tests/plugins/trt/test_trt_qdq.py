"""Q/DQ ONNX from the ort plugin's quantizer, made acceptable to TensorRT (symmetric int8, float
biases) and still accurate.

Accuracy is judged with ``onnx.reference.ReferenceEvaluator``, which computes each Q/DQ pair
exactly in numpy, so the verdict is the same on every CPU. onnxruntime is not used as the judge:
its fused int8 kernels saturate on x86 without VNNI (u8s8 through ``vpmaddubsw``), so its accuracy
on this graph depends on the CPU, while TensorRT (the graph's real consumer) does not share them."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.version_converter
import pytest
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from dk import api
from dk.default_model import ONNX_PATH, load_split
from dk.sources import parse_model_arg
from dk.specs import QuantizeRequest
from dk.testing.models import calibration_feeds
from dk_trt.qdq import count_qdq, prepare_for_tensorrt

ort = pytest.importorskip("onnxruntime", reason="the ort plugin's quantizer: pip install onnxruntime")


@pytest.fixture(scope="module", params=["uint8", "int8"])
def ort_qdq(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"qdq-{request.param}")
    artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=out,
                                                   calibration=calibration_feeds(),
                                                   options={"activations": request.param}))
    return onnx.load(str(artifact.model_file))


def accuracy(model) -> float:
    """Top-1 accuracy on the eval split, computed by the CPU-independent reference evaluator."""
    x, y = load_split("eval")
    # The evaluator implements DequantizeLinear from opset 19 on; the conversion changes no Q/DQ maths.
    model = onnx.version_converter.convert_version(model, 21)
    logits = ReferenceEvaluator(model).run(None, {"input": x})[0]
    return float((logits.argmax(1) == y).mean())


def zero_points(model) -> list[np.ndarray]:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_prepared_model_is_symmetric_int8_with_float_biases_and_stays_accurate(ort_qdq):
    prepared, report = prepare_for_tensorrt(ort_qdq)
    assert report.folded_biases == 4 and report.qdq_nodes == count_qdq(prepared) > 0
    zps = zero_points(prepared)
    assert len(zps) == report.qdq_nodes
    assert all(z.dtype == np.int8 and not z.any() for z in zps)
    inits = {i.name: numpy_helper.to_array(i) for i in prepared.graph.initializer}
    dq_inputs = [inits.get(n.input[0]) for n in prepared.graph.node if n.op_type == "DequantizeLinear"]
    assert not any(a is not None and a.dtype == np.int32 for a in dq_inputs)  # no int32 bias DQ left
    prepared_accuracy, ort_accuracy = accuracy(prepared), accuracy(ort_qdq)
    assert prepared_accuracy >= 0.95 and prepared_accuracy >= ort_accuracy - 0.02, (
        f"prepared Q/DQ accuracy {prepared_accuracy:.4f} (reference evaluator) against ort's Q/DQ "
        f"{ort_accuracy:.4f}: needs >= 0.95 and a drop of at most 0.02"
    )


def test_preparing_twice_changes_nothing_more(ort_qdq):
    once, _ = prepare_for_tensorrt(ort_qdq)
    twice, report = prepare_for_tensorrt(once)
    assert (report.symmetrized, report.folded_biases) == (0, 0)
    assert accuracy(twice) == accuracy(once)


def test_a_float_model_has_no_qdq_nodes():
    assert count_qdq(onnx.load(str(ONNX_PATH))) == 0


def test_tensorrt_ptq_keeps_8_bit_weights_whatever_the_host_cpu(monkeypatch, tmp_path):
    """On an x86 host without VNNI the ort plugin alone would pick 7-bit weights (issue 13); the
    Q/DQ model made for TensorRT must not depend on the host CPU."""
    from dk import cpu_isa
    from dk.artifacts import Artifact
    from dk_trt.quantize import ptq_source

    monkeypatch.setattr(cpu_isa, "cpu_flags", lambda: frozenset({"sse4_1", "avx2", "fma"}))
    monkeypatch.setattr(cpu_isa.platform, "machine", lambda: "x86_64")
    request = QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path, calibration=calibration_feeds())
    options = Artifact.load(ptq_source(request).path).manifest["options"]
    assert (options["reduce_range"], options["activations"]) == (False, "int8"), options
