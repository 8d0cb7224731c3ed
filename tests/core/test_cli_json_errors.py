"""With --json, an error is a JSON document on stdout too, so that CI scripts can parse every outcome."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dk


def _error_document(proc, code: int) -> dict:
    assert proc.returncode == code, proc.stdout + proc.stderr
    document = json.loads(proc.stdout)  # one document, nothing else on stdout
    assert proc.stderr.strip() == f"error: {document['error']}"
    assert document["exit_code"] == code
    return document


def test_an_unknown_plugin_is_a_json_error_document():
    document = _error_document(run_dk("run", "export", "--plugin", "ortt", "--json"), 2)
    assert document["kind"] == "PluginNotFound"
    assert document["error"].startswith("no plugin named 'ortt'; did you mean 'ort'?")
    assert "result" not in document


def test_a_click_usage_error_is_a_json_error_document():
    document = _error_document(run_dk("run", "bench", "--plugin", "ort", "--batchs", "3", "--json"), 2)
    assert document["kind"] == "usage"
    assert document["error"].startswith("no such option '--batchs'")


def test_a_failed_bench_carries_its_result_document(tmp_path):
    pytest.importorskip("onnxruntime")
    proc = run_dk("run", "bench", "--plugin", "ort", "--shapes", "input:1x3x8x8", "--iterations", "3",
                  "--hw-interval", "0", "--out", str(tmp_path), "--json")
    document = _error_document(proc, 1)
    assert document["kind"] == "RunsFailed"
    assert document["error"] == "ort:fp32 batch 1 failed: --shapes sets 'input' axis 1 to 3, but the model fixes it to 1"
    assert document["result"]["schema"] == "dk.bench/1"
    assert [r["status"] for r in document["result"]["runs"]] == ["failed"]


def test_without_json_an_error_prints_nothing_on_stdout():
    proc = run_dk("run", "export", "--plugin", "ortt")
    assert proc.returncode == 2 and proc.stdout == ""
