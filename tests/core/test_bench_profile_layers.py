"""``dk run bench --profile-layers``: rows from an engine's ``profile_layers`` reach the results and
the table; an engine without a layer profiler is a clear error."""

from __future__ import annotations

import json
import os

from tests.conftest import make_distribution, run_dk

# The ort engine with a per-layer profiler that reports each ONNX node once, with the time of a
# whole inference split evenly (a stand-in for TensorRT's IProfiler, to test dk's wiring only).
LAYERED = '''
import time
from dk.hooks import hookimpl

@hookimpl
def dk_export(request):
    from dk_ort.export import export_onnx
    return export_onnx(request)

@hookimpl
def dk_load_engine(artifact, device, options):
    from dk_ort.engine import load_engine
    engine = load_engine(artifact, device, options)

    def profile_layers(feeds, runs=10):
        import onnx
        nodes = [n.name or n.op_type for n in onnx.load(str(artifact.model_file)).graph.node]
        start = time.perf_counter()
        for _ in range(runs):
            engine.infer(feeds)
        each = (time.perf_counter() - start) * 1e3 / runs / len(nodes)
        return [{"layer": name, "mean_ms": each, "total_ms": each * runs, "percent": 100 / len(nodes),
                 "calls": runs} for name in nodes]

    engine.profile_layers = profile_layers
    return engine
'''


def test_layer_rows_are_recorded_and_printed(tmp_path):
    site = make_distribution(tmp_path / "site", "dk-test-layered", {"layered": LAYERED})
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "results.json"
    result = run_dk("run", "bench", "--plugin", "layered", "--profile-layers", "--iterations", "20",
                    "--out", str(tmp_path / "a"), "--output", str(out), "--hw-interval", "0", env_extra=env)
    assert result.returncode == 0, result.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert run["status"] == "ok" and len(run["layers"]) > 3
    assert abs(sum(r["percent"] for r in run["layers"]) - 100) < 1e-6 and all(r["calls"] == 10 for r in run["layers"])
    assert "layered:fp32 batch 1 per-layer profile" in result.stdout
    assert run["layers"][0]["layer"] in result.stdout


def test_an_engine_without_a_layer_profiler_is_named(tmp_path):
    result = run_dk("run", "bench", "--plugin", "ort", "--profile-layers", "--iterations", "5",
                    "--out", str(tmp_path / "a"), "--hw-interval", "0")
    assert result.returncode == 1
    assert "engine 'ort' has no per-layer profiler (--profile-layers needs one, e.g. the trt engine)" in result.stderr
