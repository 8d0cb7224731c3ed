"""Engines on a real GPU: build, load, infer, fp16, int8 from Q/DQ, rebuild of a broken cached plan,
per-layer profile. Every test here skips without TensorRT, a CUDA binding and a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

from dk import api
from dk.default_model import load_split
from dk.errors import InputError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, QuantizeRequest
from dk.testing.models import calibration_feeds


def export(tmp_path, precision="fp32", **kw):
    return api.export("trt", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, precision=precision,
                                           device="cuda", **kw))


def accuracy(artifact) -> float:
    x, y = load_split("eval")
    with api.load_engine("trt", artifact, "cuda") as engine:
        logits = np.concatenate([engine.infer({"input": x[i:i + 64]})["logits"] for i in range(0, len(x), 64)])
    return float((logits.argmax(1) == y).mean())


def test_fp32_engine_matches_the_trained_accuracy(tmp_path, needs_tensorrt):
    artifact = export(tmp_path)
    assert artifact.model_file.name == "v1.0_digitsnet_default_8x8_fp32_dla_disabled.plan"
    assert artifact.manifest["tool_versions"]["gpu"] == needs_tensorrt.name
    assert artifact.manifest["extra"]["tf32"] is False  # fp32 means fp32, not TF32
    assert accuracy(artifact) >= 0.97


def test_fp16_engine_is_close_to_fp32(tmp_path, needs_tensorrt):
    assert accuracy(export(tmp_path, "fp16")) >= 0.97


def test_int8_engine_from_ort_qdq(tmp_path, needs_tensorrt):
    pytest.importorskip("onnxruntime", reason="the Q/DQ ONNX comes from the ort plugin's quantizer (onnxruntime)")
    artifact = api.quantize("trt", QuantizeRequest(source=parse_model_arg(None), out_dir=tmp_path,
                                                   calibration=calibration_feeds(), calibration_name="digits"))
    assert artifact.precision == "int8" and accuracy(artifact) >= 0.95


def test_batch_outside_the_profile_is_refused(tmp_path, needs_tensorrt):
    artifact = export(tmp_path, max_shapes={"input": (8, 1, 8, 8)}, min_shapes={"input": (1, 1, 8, 8)})
    with api.load_engine("trt", artifact, "cuda") as engine, pytest.raises(InputError, match="outside the range"):
        engine.infer({"input": np.zeros((9, 1, 8, 8), np.float32)})


def test_cached_plan_that_does_not_deserialize_is_rebuilt(tmp_path, needs_tensorrt):
    import json

    from dk.artifacts import MANIFEST_NAME, sha256_file

    artifact = export(tmp_path)
    artifact.model_file.write_bytes(b"\x00" * 1024)  # garbage recorded as if it were the plan
    manifest = json.loads((artifact.path / MANIFEST_NAME).read_text())
    manifest["files"][0].update(size=1024, sha256=sha256_file(artifact.model_file))
    (artifact.path / MANIFEST_NAME).write_text(json.dumps(manifest))
    again = export(tmp_path)
    assert not again.reused and again.model_file.stat().st_size > 1024


def test_profile_layers_reports_every_layer(tmp_path, needs_tensorrt):
    x, _ = load_split("eval")
    artifact = export(tmp_path, options={"profiling_verbosity": "detailed"})
    with api.load_engine("trt", artifact, "cuda") as engine:
        rows = engine.profile_layers({"input": x[:8]}, runs=5)
        logits = engine.infer({"input": x[:8]})["logits"]  # the engine's own context is not profiled
    assert rows and set(rows[0]) == {"layer", "mean_ms", "total_ms", "percent", "calls"}
    assert abs(sum(r["percent"] for r in rows) - 100.0) < 1e-3 and all(r["calls"] == 5 for r in rows)
    assert [r["total_ms"] for r in rows] == sorted((r["total_ms"] for r in rows), reverse=True)
    assert not all(r["layer"].isdigit() for r in rows) and logits.shape == (8, 10)
    assert artifact.manifest["extra"]["profiling_verbosity"] == "detailed"


def test_engine_loaded_on_one_thread_infers_and_closes_on_others(tmp_path, needs_tensorrt):
    import threading

    x, _ = load_split("eval")
    engine = api.load_engine("trt", export(tmp_path), "cuda")
    out = {}
    worker = threading.Thread(target=lambda: out.update(engine.infer({"input": x[:4]})))
    worker.start()
    worker.join()
    closer = threading.Thread(target=engine.close)
    closer.start()
    closer.join()
    assert out["logits"].shape == (4, 10)
