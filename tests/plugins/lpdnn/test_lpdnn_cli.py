"""End to end as a user runs it: ``dk serve`` in one process, ``dk compare --plugins ort,lpdnn``
and ``dk run infer --plugin lpdnn`` in others; Ctrl-C stops the worker cleanly."""

from __future__ import annotations

import json
import signal

from dk.serve.server import STOP_GRACE_S
from tests.conftest import run_dk


def _start_serve(spawn, tmp_path, *args):
    server = spawn.dk("serve", "--plugin", "ort", "--port", "0", "--log-level", "warning",
                      "--store", str(tmp_path / "store"), *args)
    return server, server.wait_for_line(r"on (http://127\.0\.0\.1:\d+)").group(1)


def _stop(server) -> None:
    server.send_signal(signal.SIGINT)
    assert server.wait(STOP_GRACE_S) == 0, server.output()
    assert "dk serve stopped (SIGINT)" in server.stderr


def test_compare_ort_with_lpdnn_against_dk_serve_is_identical(spawn, tmp_path):
    server, url = _start_serve(spawn, tmp_path)
    try:
        compare = run_dk("compare", "--plugins", "ort,lpdnn", "-o", f"lpdnn:url={url}", "--out", str(tmp_path / "a"),
                         "--json", cwd=tmp_path)
        assert compare.returncode == 0, compare.stderr
        report = json.loads(compare.stdout)
        assert report["samples"] == 360 and report["passed"] is True
        assert [(r["engine"], r["max_abs"], r["cosine"]) for r in report["rows"]] == [("lpdnn:fp32", 0.0, 1.0)]
        export = run_dk("run", "export", "--plugin", "lpdnn", "-o", f"url={url}", "--out", str(tmp_path / "b"),
                        "--json", cwd=tmp_path)
        assert export.returncode == 0, export.stderr
        artifact = json.loads(export.stdout)["artifact"]["path"]
        from dk.default_model import load_split
        import numpy as np

        np.save(tmp_path / "x.npy", load_split("eval")[0][:4])
        results = {}
        for plugin, extra in (("lpdnn", ["--artifact", artifact]), ("ort", ["--out", str(tmp_path / "c")])):
            infer = run_dk("run", "infer", "--plugin", plugin, *extra, "--input", str(tmp_path / "x.npy"), "--json",
                           cwd=tmp_path)
            assert infer.returncode == 0, infer.stderr
            results[plugin] = json.loads(infer.stdout)["results"]
        assert len(results["lpdnn"]) == 4 and results["lpdnn"] == results["ort"]
        bench = run_dk("run", "bench", "--plugin", "lpdnn", "--artifact", artifact, "--iterations", "20",
                       "--warmup", "2", "--hw-interval", "0", "--json", cwd=tmp_path)
        assert bench.returncode == 0, bench.stderr
        remote = json.loads(bench.stdout)["runs"][0]["remote"]
        assert remote["calls"] == 22  # warm-up and timed calls of this run only
        assert remote["p50_total_ms"] >= remote["p50_server_ms"] >= remote["p50_target_infer_ms"] > 0
        assert remote["p50_network_ms"] > 0
    finally:
        _stop(server)


def test_worker_down_is_one_clear_line(spawn, tmp_path):
    server, url = _start_serve(spawn, tmp_path)
    _stop(server)  # it has exited, so its port is closed
    result = run_dk("run", "export", "--plugin", "lpdnn", "-o", f"url={url}", "-o", "retries=1",
                    "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: cannot reach the worker at {url} after 2 attempts "
                                     "(ConnectionRefusedError); is 'dk serve' running there?")
