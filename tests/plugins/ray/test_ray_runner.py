"""The ray sweep runner on a real two-node local Ray cluster: pinned cells, a killed worker,
a worker killed twice, an unknown target, and results shaped like a local run's."""

from __future__ import annotations

import json
import signal

from tests.conftest import run_dk
from tests.plugins.ray.conftest import wait_for_files

FAST = ("--iterations", "20", "--warmup", "2")


def bench(cluster, *args, tmp_path=None):
    address, _, _, env = cluster
    return run_dk("run", "bench", "--ray", address, "--json", "--out", str(tmp_path / "artifacts"), *FAST, *args,
                  env_extra=env, timeout=240)


def test_pinned_cells_run_only_on_nodes_with_their_target(cluster, tmp_path):
    result = bench(cluster, "--plugins", "ort", "--batches", "1,4", "--targets", "alpha,beta",
                   "--hw-interval", "0.02", "--duration", "0.3", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    runs = document["runs"]
    assert [(r["target"], r["batch"], r["status"]) for r in runs] == [
        ("alpha", 1, "ok"), ("alpha", 4, "ok"), ("beta", 1, "ok"), ("beta", 4, "ok")]
    ids = cluster[1]
    for run in runs:
        assert run["node"]["id"] == ids[run["target"]]
        assert run["node"]["target"] == run["target"]
        assert run["hw"]["series"], "each cell samples hardware statistics on its node"
        assert run["accuracy"] > 0.95  # the default model on its held-out split, measured on the node
    assert set(document["nodes"]) == {ids["alpha"], ids["beta"]}
    assert document["runner"]["name"] == "ray" and document["settings"]["targets"] == ["alpha", "beta"]
    # the speed-up compares each run with the reference on the same target
    assert [r["speedup"] for r in runs if r["batch"] == 1] == [1.0, 1.0]
    # the report shows what each node sampled during each cell, and the nodes
    (tmp_path / "fleet.json").write_text(result.stdout)
    report = run_dk("report", str(tmp_path / "fleet.json"), "-o", str(tmp_path / "fleet.md"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "fleet.md").read_text()
    rss = runs[0]["hw"]["series"]["process.rss"]["mean"]
    assert "## Hardware statistics per cell" in text and "## Nodes" in text
    assert f"| ort:fp32 @alpha | 1 | {runs[0]['node']['hostname']} |" in text and f"{rss:,.0f}" in text


def test_result_document_has_the_structure_of_a_local_run(cluster, tmp_path):
    sweep = ("--plugins", "ort", "--precisions", "fp32,int8", "--batches", "1,2")
    remote = bench(cluster, *sweep, tmp_path=tmp_path)
    local = run_dk("run", "bench", "--json", "--out", str(tmp_path / "artifacts"), *FAST, *sweep, env_extra=cluster[3])
    assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
    on_ray, here = json.loads(remote.stdout), json.loads(local.stdout)
    assert set(on_ray) - set(here) == {"nodes"} and set(here) <= set(on_ray)
    assert [(r["engine"], r["precision"], r["batch"]) for r in on_ray["runs"]] == \
        [(r["engine"], r["precision"], r["batch"]) for r in here["runs"]]
    for remote_run, local_run in zip(on_ray["runs"], here["runs"]):
        assert set(remote_run) - set(local_run) <= {"node", "hw"}
        assert set(local_run) - set(remote_run) <= {"energy"}
        assert remote_run["accuracy"] == local_run["accuracy"]  # same artifact, same data: same answers
        assert remote_run["input_shape"] == local_run["input_shape"]
    assert on_ray["hw"] is None and here["hw"]["series"]  # samples live in each remote run instead


def test_a_killed_worker_gets_its_cell_retried_once(cluster, crashy_mode, tmp_path):
    folder = crashy_mode("once")
    result = bench(cluster, "--plugin", "crashy", "--hw-interval", "0", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["status"] for r in runs] == ["ok"]
    assert len(list(folder.glob("load-*"))) == 2  # the load that killed its worker, then the retry


def test_a_cell_whose_worker_dies_twice_is_failed_with_the_reason(cluster, crashy_mode, tmp_path):
    folder = crashy_mode("always")
    out = tmp_path / "results.json"
    result = bench(cluster, "--plugin", "crashy", "--batches", "1", "--hw-interval", "0", "--output", str(out),
                   tmp_path=tmp_path)
    assert result.returncode == 1
    assert "error: crashy:fp32 batch 1 failed: " in result.stderr and "after 1 retry" in result.stderr
    document = json.loads(out.read_text())
    assert document["complete"] is True  # the sweep finished; the cell is marked failed
    assert document["runs"][0]["status"] == "failed"
    assert "WorkerCrashedError after 1 retry" in document["runs"][0]["error"]
    assert len(list(folder.glob("load-*"))) == 2


def test_a_target_no_node_has_is_refused_before_anything_runs(cluster, crashy_mode, tmp_path):
    folder = crashy_mode("never")
    result = bench(cluster, "--plugin", "crashy", "--targets", "alpha,gamma", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "no node of the Ray cluster advertises target(s) gamma (the cluster has: alpha, beta)" in result.stderr
    assert not list(folder.glob("load-*"))  # no cell started


def test_ctrl_c_cancels_outstanding_cells_and_writes_what_arrived(cluster, crashy_mode, spawn, tmp_path):
    address, _, _, env = cluster
    folder = crashy_mode("never", hold=2)  # two cells measure; the others wait until "release" exists
    out = tmp_path / "partial.json"
    driver = spawn.dk("run", "bench", "--ray", address, "--plugins", "crashy", "--batches", "1,2,4,8,16,32,64,128",
                      "--duration", "0.2", "--warmup", "0", "--hw-interval", "0", "--output", str(out),
                      "--out", str(tmp_path / "artifacts"), env_extra=env)
    wait_for_files(folder, "arrived-*", 2, driver)  # the driver has both results in hand
    wait_for_files(folder, "cell-*", 4, driver)  # and each node holds a cell: both are outstanding
    driver.send_signal(signal.SIGINT)
    code = driver.wait(60)
    assert code == 130, driver.output()
    assert "interrupted" in driver.stderr and "marked incomplete" in driver.stderr
    document = json.loads(out.read_text())
    assert document["interrupted"] is True and document["complete"] is False
    assert [r["batch"] for r in document["runs"]] == sorted(r["batch"] for r in document["runs"])
    assert len(document["runs"]) == 2, document["runs"]
    assert all(r["status"] == "ok" and r["latency"]["p50_ms"] > 0 for r in document["runs"])


def test_a_worker_keeps_its_engine_open_for_the_next_batch_of_the_same_artifact(cluster, crashy_mode, tmp_path):
    folder = crashy_mode("never")
    result = bench(cluster, "--plugin", "crashy", "--batches", "1,2,4", "--targets", "alpha", "--hw-interval", "0",
                   tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [r["batch"] for r in json.loads(result.stdout)["runs"]] == [1, 2, 4]
    assert len(list(folder.glob("cell-*"))) == 3 and len(list(folder.glob("load-*"))) == 1


def test_a_shared_dir_holds_the_artifacts_and_a_second_sweep_reuses_them(cluster, tmp_path):
    shared = tmp_path / "shared"
    first = bench(cluster, "--plugins", "ort", "--precisions", "fp32,int8", "--targets", "alpha,beta",
                  "--shared-dir", str(shared), "--hw-interval", "0", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = json.loads(first.stdout)["runs"]
    assert all(r["status"] == "ok" and r["artifact"].startswith(str(shared / r["target"])) for r in runs)
    assert len({r["artifact"] for r in runs}) == 4  # built once per precision and target kind
    again = bench(cluster, "--plugins", "ort", "--precisions", "fp32,int8", "--targets", "alpha,beta",
                  "--shared-dir", str(shared), "--hw-interval", "0", tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(r["node"]["build"]["reused"] for r in json.loads(again.stdout)["runs"])
