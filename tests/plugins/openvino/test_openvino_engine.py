"""The openvino engine: latency and throughput modes, infer_many, outputs the caller owns,
devices and load options."""

from __future__ import annotations

import numpy as np
import openvino
import pytest
from dk import api
from dk.default_model import load_split
from dk.errors import DeviceError, DkError, InputError


@pytest.fixture(scope="module")
def x():
    return load_split("eval")[0]


def test_latency_mode_is_one_synchronous_request(ov_fp32, x):
    with api.load_engine("openvino", ov_fp32, "CPU") as engine:
        assert (engine.mode, engine.device) == ("latency", "CPU")
        assert str(engine.compiled.get_property("PERFORMANCE_HINT")).endswith("LATENCY")
        assert engine.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
        out = engine.infer({"input": x[:8]})
    assert list(out) == ["logits"] and out["logits"].shape == (8, 10) and out["logits"].dtype == np.float32


def test_throughput_mode_uses_the_optimal_number_of_requests(ov_fp32, x):
    with api.load_engine("openvino", ov_fp32, "cpu", {"mode": "throughput"}) as engine:
        assert engine.mode == "throughput"
        assert str(engine.compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
        assert engine.requests == engine.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") >= 1
        feeds = [{"input": np.ascontiguousarray(x[i : i + 4])} for i in range(0, 64, 4)]
        many = engine.infer_many(feeds)
        single = engine.infer(feeds[3])
    with api.load_engine("openvino", ov_fp32, "CPU") as latency:
        want = [latency.infer(f)["logits"] for f in feeds]
    assert len(many) == len(feeds)
    for got, expected in zip(many, want):
        np.testing.assert_allclose(got["logits"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(single["logits"], want[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["latency", "throughput"])
def test_returned_outputs_are_not_overwritten_by_later_calls(ov_fp32, x, mode):
    with api.load_engine("openvino", ov_fp32, "CPU", {"mode": mode, "nireq": "1"}) as engine:
        first = engine.infer({"input": x[:2]})["logits"]
        kept = first.copy()
        engine.infer({"input": x[2:4]})
        engine.infer_many([{"input": x[4:6]}, {"input": x[6:8]}])
    np.testing.assert_array_equal(first, kept)


def test_inputs_are_not_modified(ov_fp32, x):
    feed = np.ascontiguousarray(x[:4])
    before = feed.copy()
    with api.load_engine("openvino", ov_fp32, "CPU", {"mode": "throughput"}) as engine:
        engine.infer_many([{"input": feed}] * 3)
    np.testing.assert_array_equal(feed, before)


def test_infer_many_checks_every_feed_before_running(ov_fp32, x):
    with api.load_engine("openvino", ov_fp32, "CPU", {"mode": "throughput"}) as engine, \
            pytest.raises(InputError, match="dtype float64"):
        engine.infer_many([{"input": x[:2]}, {"input": x[:2].astype(np.float64)}])


def test_closed_engine_raises(ov_fp32, x):
    engine = api.load_engine("openvino", ov_fp32, "CPU", {"mode": "throughput"})
    engine.close()
    engine.close()
    with pytest.raises(DkError, match="closed"):
        engine.infer({"input": x[:1]})


def test_options_set_the_compiled_properties(ov_fp32):
    options = {"threads": "1", "streams": "1", "nireq": "3", "mode": "throughput"}
    with api.load_engine("openvino", ov_fp32, "CPU", options) as engine:
        assert engine.compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert engine.compiled.get_property("NUM_STREAMS") == 1
        assert engine.requests == 3


@pytest.mark.parametrize("options, message", [
    ({"mode": "fast"}, "mode=fast is not one of latency, throughput"),
    ({"threads": "-1"}, "threads=-1 must be an integer >= 1"),
    ({"infer_precision": "int4"}, "infer_precision=int4 is not one of f32, bf16, f16"),
    ({"level": "all"}, "unknown openvino option"),
])
def test_bad_load_options_raise_one_line_errors(ov_fp32, options, message):
    with pytest.raises(DkError, match=message) as info:
        api.load_engine("openvino", ov_fp32, "CPU", options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "TPU", "GPU.7", "AUTO:FPGA"])
def test_unknown_or_absent_device_raises_device_error_listing_devices(ov_fp32, device):
    available = openvino.Core().available_devices
    if device in available:
        pytest.skip(f"this machine has {device}")
    with pytest.raises(DeviceError, match=rf"this machine has {', '.join(available)}"):
        api.load_engine("openvino", ov_fp32, device)


@pytest.mark.parametrize("device", ["GPU", "NPU"])
def test_accelerator_absent_here_raises_device_error(ov_fp32, device):
    if device in {d.split(".")[0] for d in openvino.Core().available_devices}:
        pytest.skip(f"this machine has an OpenVINO {device}")
    with pytest.raises(DeviceError, match=f"device '{device}' is not available to OpenVINO here"):
        api.load_engine("openvino", ov_fp32, device)


def test_auto_device_runs_on_what_is_there_in_fp32(ov_fp32, x):
    with api.load_engine("openvino", ov_fp32, "AUTO") as engine:
        out = engine.infer({"input": x[:4]})["logits"]
    with api.load_engine("openvino", ov_fp32, "CPU") as cpu:
        np.testing.assert_allclose(out, cpu.infer({"input": x[:4]})["logits"], rtol=1e-5, atol=1e-5)


def test_onnx_artifacts_of_other_plugins_run_too(tmp_path, x):
    pytest.importorskip("onnxruntime", reason="needs the ort plugin's onnxruntime")
    from dk.sources import parse_model_arg
    from dk.specs import ExportRequest

    ort = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, options={"level": "basic"}))
    with api.load_engine("openvino", ort, "CPU") as engine, api.load_engine("ort", ort) as reference:
        np.testing.assert_allclose(engine.infer({"input": x[:8]})["logits"],
                                   reference.infer({"input": x[:8]})["logits"], rtol=1e-4, atol=1e-4)


def test_graph_that_breaks_cpu_snippets_still_compiles_and_matches_the_reference(tmp_path):
    """OpenVINO 2026.4's CPU snippets refuse Gemm(K=1) after Gemm(N=1) at a static batch; the
    loader retries without snippets."""
    import onnx
    from dk.specs import ExportRequest, ModelSource
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
               (("w1", (7, 1)), ("w2", (1, 1)))]
    nodes = [helper.make_node("Gemm", ["input", "w1"], ["a"]), helper.make_node("Gemm", ["a", "w2"], ["b"]),
             helper.make_node("Tanh", ["b"], ["output"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 7])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [4, 1])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "gemm_k1.onnx"
    onnx.save(model, str(path))
    artifact = api.export("openvino", ExportRequest(source=ModelSource("onnx", str(path)), out_dir=tmp_path))
    x = rng.standard_normal((4, 7)).astype(np.float32)
    with api.load_engine("openvino", artifact, "CPU") as engine:
        got = engine.infer({"input": x})["output"]
    np.testing.assert_allclose(got, ReferenceEvaluator(model).run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
