"""``dk run bench`` sweeps end to end: plan checks, result document, CSV, baseline gate, Ctrl-C."""

from __future__ import annotations

import csv
import json

import pytest

from dk.bench.sweep import Entry, parse_batches, parse_sizes, plan_sweep
from dk.errors import PluginNotFound, UsageError
from dk.plugins import get_plugin_manager
from tests.conftest import run_dk

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One small sweep of ort fp32 and int8 at batch 1 and 4, written as JSON and CSV."""
    folder = tmp_path_factory.mktemp("sweep")
    proc = run_dk("run", "bench", "--plugins", "ort,ort:int8", "--batches", "1,4", "--iterations", "30",
                  "--warmup", "3", "--hw-interval", "0.02", "--out", str(folder / "artifacts"),
                  "--output", str(folder / "r.json"), "--csv", str(folder / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    return folder, json.loads((folder / "r.json").read_text()), proc


def test_the_document_has_every_run_with_latency_accuracy_and_speedup(sweep):
    _, doc, _ = sweep
    assert doc["schema"] == "dk.bench/1" and doc["complete"] and not doc["interrupted"]
    runs = {(r["engine"], r["precision"], r["batch"]): r for r in doc["runs"]}
    assert set(runs) == {("ort", "fp32", 1), ("ort", "fp32", 4), ("ort", "int8", 1), ("ort", "int8", 4)}
    for (_, precision, batch), run in runs.items():
        assert run["status"] == "ok" and run["input_shape"] == [batch, 1, 8, 8]
        lat = run["latency"]
        assert lat["iterations"] == 30 and lat["batch"] == batch
        assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
        assert lat["throughput"] > 0 and lat["cv"] >= 0
        assert set(run["phases"]) == {"preprocess", "infer", "postprocess"}
        assert run["preprocess"] == "dk.default_model.preprocess" and run["copies"] == "none"
        assert run["accuracy"] == pytest.approx(0.9833 if precision == "fp32" else 0.9778, abs=0.006)
    assert doc["settings"]["reference"] == "ort:fp32"
    assert runs[("ort", "fp32", 1)]["speedup"] == 1.0 and runs[("ort", "int8", 4)]["speedup"] > 0


def test_environment_model_summary_and_hw_series(sweep):
    _, doc, _ = sweep
    env = doc["environment"]
    assert env["cpu"] and env["python"].count(".") == 2 and env["dk"] == "0.1.0"
    assert env["libraries"]["onnxruntime"] and env["plugins"]["ort"] == "0.1.0"
    summary = doc["model"]["summary"]
    assert doc["model"]["name"] == "digitsnet" and summary["params"] == 15338 and summary["macs"] == 452864
    rss = doc["hw"]["series"]["process.rss"]
    assert rss["unit"] == "MiB" and rss["n"] == len(rss["v"]) >= 1
    assert rss["min"] <= rss["median"] <= rss["max"] and rss["std"] >= 0


def test_csv_has_one_row_per_run(sweep):
    folder, doc, _ = sweep
    rows = list(csv.DictReader((folder / "r.csv").open()))
    assert [(r["engine"], r["precision"], r["batch"]) for r in rows] == [
        (r["engine"], r["precision"], str(r["batch"])) for r in doc["runs"]]
    assert float(rows[0]["p50_ms"]) == pytest.approx(doc["runs"][0]["latency"]["p50_ms"])
    assert rows[0]["input_shape"] == "1x1x8x8" and rows[0]["status"] == "ok"


def test_the_same_results_pass_their_own_baseline(sweep, tmp_path):
    folder, doc, _ = sweep
    proc = run_dk("run", "bench", "--plugins", "ort", "--batches", "1", "--iterations", "20", "--warmup", "2",
                  "--out", str(folder / "artifacts"), "--baseline", str(folder / "r.json"), "--max-regression", "900%",
                  "--hw-interval", "0", "--output", str(tmp_path / "again.json"))
    assert proc.returncode == 0, proc.stderr
    gate = json.loads((tmp_path / "again.json").read_text())["baseline"]
    assert gate["matched_runs"] == 1 and gate["regressions"] == [] and gate["max_regression"] == 9.0


def test_a_regression_exits_non_zero_with_a_table(sweep, tmp_path):
    folder, doc, _ = sweep
    faster = json.loads(json.dumps(doc))
    for run in faster["runs"]:  # a baseline 1000x faster and 100 % accurate: beyond anything load can explain
        run["latency"]["p50_ms"] /= 1000
        run["latency"]["throughput"] *= 1000
        run["accuracy"] = 1.0
    (tmp_path / "fast.json").write_text(json.dumps(faster))
    proc = run_dk("run", "bench", "--plugin", "ort", "--batch", "1", "--iterations", "20", "--warmup", "2",
                  "--out", str(folder / "artifacts"), "--baseline", str(tmp_path / "fast.json"), "--hw-interval", "0",
                  "--max-regression", "1%")
    assert proc.returncode == 1
    assert "regressions beyond 1.0%" in proc.stdout
    assert {"p50_ms", "throughput", "accuracy"} <= {w for line in proc.stdout.splitlines() for w in line.split()}
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: 3 metric(s) regressed by more than 1.0% against {tmp_path / 'fast.json'}")


def test_unknown_engine_or_precision_is_one_error_before_anything_runs(tmp_path):
    proc = run_dk("run", "bench", "--plugins", "ort,nosuch", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("error: no plugin named 'nosuch'")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "ort").exists()
    proc = run_dk("run", "bench", "--plugin", "ort", "--precisions", "fp32,int4", "--out", str(tmp_path))
    assert proc.returncode == 2 and not (tmp_path / "ort").exists()
    assert proc.stderr.strip() == "error: --precisions: unknown precision 'int4'; use one of fp32, fp16, int8"


def test_plan_checks_engines_and_skips_unsupported_pairs():
    manager = get_plugin_manager()
    with pytest.raises(PluginNotFound):
        plan_sweep(["ort", "nosuch"], ["fp32"], manager)
    pytest.importorskip("torch")
    with pytest.raises(UsageError, match="engine 'torch' does not run int8"):
        plan_sweep(["torch:int8"], [], manager)
    plan = plan_sweep(["torch", "ort"], ["fp32", "int8"], manager, batches=[1, 8], reference=Entry("ort", "int8"))
    assert plan.entries == [Entry("torch", "fp32"), Entry("ort", "fp32"), Entry("ort", "int8")]
    assert plan.skipped == [{"entry": "torch:int8", "reason": "torch runs fp32, fp16"}]
    assert plan.total_runs == 6


def test_list_options():
    assert parse_batches("1,4,8,16,32,64", 1) == [1, 4, 8, 16, 32, 64] and parse_batches(None, 3) == [3]
    assert parse_sizes("224,160x120") == [(224, 224), (160, 120)]
    with pytest.raises(UsageError, match="--batches: '0' is not a positive integer"):
        parse_batches("1,0", 1)
    with pytest.raises(UsageError, match="--input-sizes"):
        parse_sizes("224x")


def test_ctrl_c_writes_the_runs_so_far_marked_incomplete(tmp_path, monkeypatch, capsys):
    import dk.bench.execution
    from dk.cli import main

    real = dk.bench.execution.measure_pipeline
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(dk.bench.execution, "measure_pipeline", interrupt_second)
    code = main(["run", "bench", "--plugin", "ort", "--batches", "1,2,4", "--iterations", "10", "--warmup", "1",
                 "--out", str(tmp_path / "a"), "--output", str(tmp_path / "r.json"), "--hw-interval", "0.05"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 130 and doc["interrupted"] and not doc["complete"]
    assert [r["batch"] for r in doc["runs"]] == [1] and doc["runs"][0]["status"] == "ok"
    assert doc["hw"]["interval_s"] == 0.05
    err = capsys.readouterr().err
    assert f"interrupted: 1 run(s) so far written to {tmp_path / 'r.json'}, marked incomplete" in err


@pytest.fixture
def fused_artifact(tmp_path):
    """An ort ``-o level=all`` artifact (engine-fused ``com.microsoft`` ops) of a copy of the
    embedded ONNX model, and that copy."""
    import shutil

    from dk import api
    from dk.default_model import ONNX_PATH
    from dk.specs import ExportRequest, ModelSource

    source = tmp_path / "digits.onnx"
    shutil.copy(ONNX_PATH, source)
    artifact = api.export("ort", ExportRequest(source=ModelSource("onnx", str(source)), out_dir=tmp_path / "a",
                                               options={"level": "all"}))
    assert artifact.manifest["extra"]["op_domains"]  # the case under test: ONNX cannot infer these ops
    return artifact, source


def test_an_engine_fused_artifact_is_summarized_on_its_source(fused_artifact):
    from types import SimpleNamespace

    from dk.bench.execution import model_record
    from dk.pipeline import BuildOptions

    artifact, source = fused_artifact
    record = model_record(BuildOptions(artifact=str(artifact.path)), SimpleNamespace(input_sizes=[]))
    assert record["summary"]["macs"] == 452864 and record["summary"]["params"] == 15338  # the model's, as above
    assert record["summary"]["input_shapes"] == {"input": [1, 1, 8, 8]}
    assert record["summary_of"].startswith(f"the artifact's source {source}: its own graph holds engine-fused ops")


def test_an_engine_fused_artifact_whose_source_changed_has_no_summary_and_says_why(fused_artifact):
    from types import SimpleNamespace

    from dk.bench.execution import model_record
    from dk.pipeline import BuildOptions

    artifact, source = fused_artifact
    source.write_bytes(source.read_bytes() + b"\0")
    record = model_record(BuildOptions(artifact=str(artifact.path)), SimpleNamespace(input_sizes=[]))
    assert record["summary"] is None and "summary_of" not in record
    assert f"its source {source} is gone or changed; bench the original model with --model" in record["summary_error"]
