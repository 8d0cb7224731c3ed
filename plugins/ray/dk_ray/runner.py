"""The ``ray`` sweep runner: every cell of a sweep as a Ray task, pinned to its target.

One build task per artifact group (engine, precision, input size, target) runs on a node of the
target; its artifact travels through the object store (or lies in ``--shared-dir``) to the
measure tasks of that group, one per batch size. A cell whose worker or node dies is retried
once by Ray (elsewhere when the node is gone), then recorded as failed with the reason; the
sweep always finishes. Ctrl-C cancels what is outstanding and keeps what arrived.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from dk.bench.targets import RESOURCE_PREFIX, resource_name
from dk.errors import DkError, UsageError

#: CPUs a cell asks for: one, so that a 2-core node measures two cells at a time unless the
#: cells are pinned to a target (each target slot admits one cell).
CELL_CPUS = 1


class RayRunner:
    """Connects to ``address`` (``auto``, ``local`` or ``HOST:PORT``) when the sweep starts."""

    name = "ray"
    local = False

    def __init__(self, address: str = "auto", shared_dir: str | None = None):
        self.address = address
        self.shared_dir = str(Path(shared_dir).resolve()) if shared_dir else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "shared_dir": self.shared_dir}

    def run(self, plan: Any, opts: Any, document: dict, sampler: Any, progress: Any) -> None:
        # Ray prints worker deaths to stdout from a thread of its own: stdout is for --json
        with contextlib.redirect_stdout(sys.stderr):
            ray, owned = connect(self.address)
            try:
                self._run(ray, plan, opts, document, progress)
            finally:
                if owned:
                    ray.shutdown()

    def _run(self, ray: Any, plan: Any, opts: Any, document: dict, progress: Any) -> None:
        from dk.bench.execution import add_speedups

        check_targets(plan.targets, ray.cluster_resources())
        cells = plan.cells(split_batches=True)
        pending = self._submit(ray, plan, opts, cells, ship_inputs(opts))
        order = {id(cell): index for index, cell in enumerate(cells)}
        position: dict[int, int] = {}  # id(run) -> its cell's place in the plan
        document["nodes"] = {}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                runs = _collect(ray, ready[0], plan, opts, cell, document["nodes"])
                position.update((id(run), order[id(cell)]) for run in runs)
                document["runs"].extend(runs)
                progress(cell.label)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        document["runs"].sort(key=lambda run: position[id(run)])  # plan order, whatever finished first
        add_speedups(document, plan.reference or plan.entries[0])

    def _submit(self, ray: Any, plan: Any, opts: Any, cells: list, inputs: dict) -> dict:
        from dk_ray.cells import build_group, measure_cell

        build_remote = ray.remote(build_group)
        measure_remote = ray.remote(measure_cell)
        builds: dict[tuple, Any] = {}
        pending = {}
        for cell in cells:
            resources = {resource_name(cell.target): 1} if cell.target else {}
            retry = {"max_retries": 1, "retry_exceptions": False, "num_cpus": CELL_CPUS, "resources": resources}
            group = cell.artifact_group
            if group not in builds:
                builds[group] = build_remote.options(**retry).remote(cell, opts, inputs, self.shared_dir)
            pending[measure_remote.options(**retry).remote(plan, opts, cell, builds[group], inputs)] = cell
        return pending

def _collect(ray: Any, ref: Any, plan: Any, opts: Any, cell: Any, nodes: dict) -> list[dict]:
    """The cell's runs (recording its node in ``nodes``), or one failed run per batch naming what
    went wrong."""
    from dk.bench.execution import failed_runs

    try:
        result = ray.get(ref)
    except Exception as exc:  # worker or node died twice, cancelled, or dk not installed there
        return failed_runs(plan, opts, cell, _task_error(exc))
    node = result["node"]
    nodes.setdefault(node["id"], {"hostname": node["hostname"], "environment": result["environment"]})
    for run in result["runs"]:
        run["node"]["cell_seconds"] = round(result["seconds"], 4)
    return result["runs"]


def connect(address: str) -> tuple[Any, bool]:
    """``ray`` connected to the cluster, and whether this call connected it (an existing
    connection in this process is reused, and left open)."""
    try:
        import ray
    except ImportError:
        raise DkError("the ray runner needs ray: pip install ./plugins/ray") from None
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    try:
        if address == "local":
            ray.init(include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DkError(f"cannot reach a Ray cluster at {address!r} ({first}); start one with 'ray start --head' "
                      "or use --ray local for a throwaway cluster on this machine") from None
    return ray, True


def check_targets(targets: list[str], resources: dict[str, float]) -> None:
    """Refuse, before anything runs, a target that no node of the cluster advertises."""
    missing = [t for t in targets if resources.get(resource_name(t), 0) <= 0]
    if missing:
        have = sorted(k.removeprefix(RESOURCE_PREFIX) for k in resources if k.startswith(RESOURCE_PREFIX))
        raise UsageError(f"no node of the Ray cluster advertises target(s) {', '.join(missing)} (the cluster has: "
                         f"{', '.join(have) or 'no dk targets'}); join one with ray start "
                         "$(dk doctor --ray-resources) on that machine")


def ship_inputs(opts: Any) -> dict[str, tuple[Any, Any]]:
    """Local files the cells need (model, weights, ``--data`` file, ``--artifact`` folder), put in
    the object store. Folders other than an artifact must be paths every node sees."""
    import ray

    from dk.artifacts import Artifact

    inputs: dict[str, tuple[Any, Any]] = {}
    for field in ("model", "weights", "data"):
        value = getattr(opts, field)
        if value and Path(value).is_file():
            inputs[field] = (Path(value).name, ray.put(Path(value).read_bytes()))
    if opts.artifact:
        from dk_ray.shipping import pack_dir

        artifact = Artifact.load(opts.artifact)
        relative = f"{artifact.path.parent.name}/{artifact.path.name}"
        inputs["artifact"] = ((artifact.manifest.get("cache_key") or artifact.path.name, relative),
                              ray.put(pack_dir(artifact.path)))
    return inputs


def _task_error(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    kind = type(exc).__name__
    if kind in ("WorkerCrashedError", "NodeDiedError", "OwnerDiedError", "ObjectLostError"):
        return f"{kind} after 1 retry: {first}"
    return f"{kind}: {first}"
