"""The stages end to end through the CLI on the embedded model (ort + torch plugins)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_dk

pytest.importorskip("onnxruntime")


def _json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_export_then_reexport_reuses_the_artifact(tmp_path):
    first = _json(run_dk("run", "export", "--plugin", "ort", "--out", str(tmp_path), "--json"))
    again = _json(run_dk("run", "export", "--plugin", "ort", "--out", str(tmp_path), "--json"))
    art = first["artifact"]
    assert art["path"].endswith("ort/v1.0_digitsnet_default_8x8_fp32")
    assert art["inputs"][0]["shape"] == ["batch", 1, 8, 8]
    assert not art["reused"] and again["artifact"]["reused"]
    assert again["artifact"]["cache_key"] == art["cache_key"]


def test_infer_returns_labelled_top_k_for_eval_samples(tmp_path):
    result = _json(run_dk("run", "infer", "--plugin", "ort", "--batch", "4", "--out", str(tmp_path), "--json"))
    assert result["outputs"]["logits"]["shape"] == [4, 10]
    predicted = [r["top_k"][0]["label"] for r in result["results"]]
    truth = [str(t) for t in result["labels"]]
    assert sum(p == t for p, t in zip(predicted, truth)) >= 3
    scores = [c["score"] for c in result["results"][0]["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6


def test_infer_from_npy_with_the_wrong_dtype_is_one_error_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float64))
    proc = run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: input 'input' has dtype float64, expected float32; "
                                   "cast it with .astype('float32')")


def test_bench_reports_measured_latency_and_accuracy(tmp_path):
    result = _json(run_dk("run", "bench", "--plugin", "ort", "--batch", "8", "--iterations", "30", "--warmup", "3",
                          "--out", str(tmp_path), "--json"))
    latency = result["latency"]
    assert latency["iterations"] == 30 and latency["batch"] == 8
    assert 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"]
    assert latency["throughput"] > 0
    assert result["accuracy"] == pytest.approx(0.9833, abs=0.005)


def test_quantize_writes_an_int8_artifact(tmp_path):
    result = _json(run_dk("run", "quantize", "--plugin", "ort", "--out", str(tmp_path), "--json"))
    art = result["artifact"]
    assert art["precision"] == "int8" and art["name"] == "v1.0_digitsnet_default_8x8_int8"


def test_compare_torch_ort_and_int8_are_within_tolerance(tmp_path):
    pytest.importorskip("torch")
    report = _json(run_dk("compare", "--plugins", "torch,ort,ort:int8", "--out", str(tmp_path), "--json"))
    assert report["reference"] == "torch:fp32" and report["samples"] == 360 and report["passed"]
    rows = {r["engine"]: r for r in report["rows"]}
    assert rows["ort:fp32"]["max_abs"] < 1e-4 and rows["ort:fp32"]["cosine"] > 0.99999
    assert rows["ort:int8"]["top1_agreement"] >= 0.95 and rows["ort:int8"]["max_abs"] > 1e-4


def test_run_all_reports_every_precision_against_torch(tmp_path):
    pytest.importorskip("torch")
    report = _json(run_dk("run", "all", "--plugin", "ort", "--iterations", "20", "--warmup", "2",
                          "--out", str(tmp_path), "--json"))
    assert report["trained_accuracy"] == 0.9833 and report["samples"] == 360
    rows = {(r["engine"], r["precision"]): r for r in report["rows"]}
    assert set(rows) == {("torch", "fp32"), ("ort", "fp32"), ("ort", "int8")}
    assert rows[("torch", "fp32")]["accuracy"] == pytest.approx(0.9833, abs=1e-4)
    assert rows[("ort", "fp32")]["accuracy"] == rows[("torch", "fp32")]["accuracy"]
    assert abs(rows[("ort", "int8")]["accuracy"] - rows[("ort", "fp32")]["accuracy"]) <= 0.01
    assert all(r["parity_ok"] for k, r in rows.items() if k[0] == "ort")
    assert all(r["speedup"] > 0 for k, r in rows.items() if k[0] == "ort")


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_an_int8_artifact_is_not_re_exported_as_fp32_over_the_real_one(tmp_path):
    fp32 = _json(run_dk("run", "export", "--plugin", "ort", "--out", str(tmp_path), "--json"))["artifact"]
    int8 = _json(run_dk("run", "quantize", "--plugin", "ort", "--out", str(tmp_path), "--json"))["artifact"]
    before = (tmp_path / "ort" / "v1.0_digitsnet_default_8x8_fp32" / "dk.json").read_text()
    line = _one_error_line(run_dk("run", "export", "--plugin", "ort", "--model", int8["path"], "--out", str(tmp_path)))
    assert line == (f"error: --model {int8['path']} is an int8 artifact; exporting it as fp32 would label its int8 "
                    f"graph fp32: use it as it is with 'dk run infer|bench --artifact {int8['path']}', or give "
                    "--model the original fp32 model")
    assert (tmp_path / "ort" / "v1.0_digitsnet_default_8x8_fp32" / "dk.json").read_text() == before
    assert fp32["precision"] == "fp32"
    line = _one_error_line(run_dk("run", "quantize", "--plugin", "ort", "--artifact", int8["path"], "--out",
                                  str(tmp_path)))
    assert line.startswith(f"error: {int8['path']} is already an int8 artifact; quantizing its int8 graph again")


def test_export_refuses_artifact_instead_of_building_the_default_model(tmp_path):
    artifact = _json(run_dk("run", "export", "--plugin", "ort", "--out", str(tmp_path / "a"), "--json"))["artifact"]
    proc = run_dk("run", "export", "--plugin", "ort", "--artifact", artifact["path"], "--out", str(tmp_path / "b"))
    assert _one_error_line(proc) == (f"error: export takes --model, not --artifact: to export from the artifact, "
                                     f"give it as --model {artifact['path']}; --artifact is for infer, bench and "
                                     "quantize")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("plugin", ["ort", "openvino"])
@pytest.mark.parametrize("x, expected", [
    (np.zeros((20, 1, 9, 9), np.float32),
     "input 'input' has shape [20, 1, 9, 9], expected [batch, 1, 8, 8] (axis 2 must be 8)"),
    (np.zeros((20, 1, 8, 8), np.float64),
     "input 'input' has dtype float64, expected float32; cast it with .astype('float32')"),
])
def test_calibration_data_that_does_not_fit_the_input_is_the_input_error_before_quantizing(tmp_path, plugin, x,
                                                                                             expected):
    if plugin == "openvino":
        pytest.importorskip("openvino")
    np.savez(tmp_path / "calib.npz", x=x)

    line = _one_error_line(run_dk("run", "quantize", "--plugin", plugin, "--data", str(tmp_path / "calib.npz"),
                                  "--out", str(tmp_path / "out")))

    assert line == f"error: --data {tmp_path / 'calib.npz'}: {expected}"
    assert not (tmp_path / "out" / plugin).exists()
