"""A node that dies in the middle of a cell: the cell is retried on another node and the sweep
finishes with its result (its own cluster: the test removes a node)."""

from __future__ import annotations

import json

from tests.plugins.ray.conftest import cluster_environment, node_ids, wait_for_files


def test_a_cell_on_a_dying_node_is_retried_on_another_node(spawn, tmp_path):
    from ray.cluster_utils import Cluster

    with cluster_environment(tmp_path) as (env, crashy):
        (crashy / "mode").write_text("never")
        head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            doomed = head.add_node(num_cpus=1, resources={"dk-target:doomed": 1})
            head.wait_for_nodes()
            out = tmp_path / "results.json"
            (crashy / "hold").write_text("0")  # the cell waits on the doomed node until "release" exists
            process = spawn.dk("run", "bench", "--ray", head.address, "--plugin", "crashy", "--duration", "0.5",
                               "--warmup", "0", "--hw-interval", "0", "--output", str(out), env_extra=env)
            wait_for_files(crashy, "cell-*", 1, process)  # the cell is held on the only node with a CPU
            rescue = head.add_node(num_cpus=1, resources={"dk-target:rescue": 1})
            head.wait_for_nodes()
            rescue_id = node_ids(head.address, ("rescue",))["rescue"]
            head.remove_node(doomed)  # the node dies with the cell (and the artifact it holds) on it
            (crashy / "release").touch()  # the retried cell measures on the rescue node
            assert process.wait(120) == 0, process.output()
            run = json.loads(out.read_text())["runs"][0]
            assert run["status"] == "ok" and run["latency"]["p50_ms"] > 0
            assert run["node"]["id"] == rescue_id != doomed.node_id
            assert len(list(crashy.glob("cell-*"))) == 2  # started on the doomed node, then on the rescue
        finally:
            head.shutdown()
