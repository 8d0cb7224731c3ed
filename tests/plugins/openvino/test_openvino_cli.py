"""The openvino plugin through the dk CLI: compare with torch and ort, quantize --json, and
export/infer/bench with latency and throughput modes from one cached IR."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dk


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # stdout holds the JSON document and nothing else


def test_compare_torch_ort_openvino_on_the_default_model(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed: no torch reference engine")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: no ort engine")
    pytest.importorskip("nncf", reason="NNCF is not installed: no openvino int8")
    report = _json(run_dk("compare", "--plugins", "torch,ort,openvino,openvino:int8", "--out", str(tmp_path),
                          "--json"))
    assert (report["reference"], report["data"], report["samples"]) == ("torch:fp32", "digits-eval", 360)
    rows = {r["engine"]: r for r in report["rows"]}
    assert set(rows) == {"ort:fp32", "openvino:fp32", "openvino:int8"} and report["passed"]
    assert rows["openvino:fp32"]["max_abs"] < 1e-4 and rows["openvino:fp32"]["top1_agreement"] == 1.0
    assert rows["openvino:int8"]["cosine"] > 0.999 and rows["openvino:int8"]["top1_agreement"] >= 0.99


def test_quantize_json_keeps_nncf_output_off_stdout(tmp_path):
    pytest.importorskip("nncf", reason="NNCF is not installed: no openvino int8")
    result = _json(run_dk("run", "quantize", "--plugin", "openvino", "--out", str(tmp_path), "--json"))
    artifact = result["artifact"]
    assert (artifact["plugin"], artifact["format"], artifact["precision"]) == ("openvino", "openvino-ir", "int8")
    assert artifact["options"]["calibration"]["name"] == "digits-calib[:128]"


def test_export_then_infer_in_throughput_mode_reuses_the_ir(tmp_path):
    out = str(tmp_path)
    exported = _json(run_dk("run", "export", "--plugin", "openvino", "--precision", "fp16", "--out", out, "--json"))
    inferred = _json(run_dk("run", "infer", "--plugin", "openvino", "--precision", "fp16", "--out", out,
                            "--device", "cpu", "-o", "mode=throughput", "--batch", "4", "--json"))
    assert inferred["artifact"] == exported["artifact"]["path"]
    predicted = [r["top_k"][0]["label"] for r in inferred["results"]]
    assert len(predicted) == 4 and sum(p == str(t) for p, t in zip(predicted, inferred["labels"])) >= 3


def test_bench_in_throughput_mode_also_measures_pipelined_throughput(tmp_path):
    from dk import api
    from dk.pipeline import BuildOptions, export

    with api.load_engine("openvino", export("openvino", "fp32", BuildOptions(out=tmp_path)), "cpu",
                         {"mode": "throughput"}) as engine:
        requests = engine.parallel_requests
        assert requests == engine.requests >= 1
    bench = _json(run_dk("run", "bench", "--plugin", "openvino", "-o", "mode=throughput", "--iterations", "40",
                         "--hw-interval", "0", "--out", str(tmp_path), "--json"))
    run = bench["runs"][0]
    if requests == 1:
        assert "pipelined" not in run  # one request: nothing runs in parallel, the latency loop says it all
    else:
        assert run["pipelined"]["requests"] == requests and run["pipelined"]["calls"] >= 40
        assert run["pipelined"]["throughput"] == pytest.approx(run["pipelined"]["calls"] / run["pipelined"]["seconds"], rel=1e-3)
    latency_mode = _json(run_dk("run", "bench", "--plugin", "openvino", "--iterations", "10", "--hw-interval", "0",
                                "--out", str(tmp_path), "--json"))
    assert "pipelined" not in latency_mode["runs"][0]
