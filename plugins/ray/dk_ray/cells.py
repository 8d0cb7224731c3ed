"""What runs on a Ray node: build one artifact group, measure one cell.

These are plain functions; :mod:`dk_ray.runner` wraps them with ``ray.remote``. Every node needs
dk and the plugins of the sweep installed. Input files named on the command line (model, weights,
``--data``, ``--artifact``) arrive as bytes and are saved in the node's cache.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import attrs

from dk_ray import shipping

_environment: dict | None = None  # once per worker process
_engine: tuple[tuple, Any] | None = None  # (key, engine): the last engine this worker opened


def build_group(cell: Any, opts: Any, inputs: dict, shared_dir: str | None) -> dict[str, Any]:
    """Build the artifact of ``cell``'s group on this node. Returns ``status`` ok with the
    artifact (as tar bytes, or its path in ``shared_dir``) and the engine's load options, or
    ``status`` failed with the one-line error. Never raises for a build error."""
    from dk.bench.execution import build_cell, failed

    started = time.perf_counter()
    try:
        # one folder per target kind: plans built for one GPU kind must never replace another's
        root = Path(shared_dir) if shared_dir else shipping.node_cache() / "build"
        local = localize(opts, inputs, root / (cell.target or "any-target"))
        artifact, options = build_cell(cell, local)
    except Exception as exc:
        return {**failed(exc), "node": node_facts(), "seconds": time.perf_counter() - started}
    result = {"status": "ok", "options": options, "cache_key": artifact.manifest.get("cache_key") or "",
              "relative": f"{artifact.path.parent.name}/{artifact.path.name}", "node": node_facts(),
              "reused": bool(getattr(artifact, "reused", False))}
    if shared_dir:
        result["path"] = str(artifact.path)
    else:
        result["payload"] = shipping.pack_dir(artifact.path)
    result["seconds"] = time.perf_counter() - started
    return result


def measure_cell(plan: Any, opts: Any, cell: Any, built: dict, inputs: dict) -> dict[str, Any]:
    """Measure ``cell`` on this node with the artifact ``built`` by :func:`build_group`; returns
    the run records (each with the node it ran on), the node's environment and the cell's own
    run time."""
    from dk.bench.execution import run_cell
    from dk.bench.hwstats import HwSampler
    from dk.plugins import get_plugin_manager

    started = time.perf_counter()
    local = localize(opts, inputs, shipping.node_cache() / "build")
    manager = get_plugin_manager()
    manager.load_all()
    sampler = HwSampler(plan.hw_interval, manager) if plan.hw_interval > 0 else None
    runs: list[dict] = []
    if sampler is not None:
        sampler.start()
    try:
        run_cell(plan, local, cell, runs, sampler, build=lambda: _artifact(built), load=_open_engine)
    finally:
        if sampler is not None:
            sampler.stop()
    node = node_facts()
    hw = sampler.to_json() if sampler is not None else None
    build = {"hostname": built["node"]["hostname"], "seconds": round(built["seconds"], 4),
             "reused": built.get("reused", False)}
    for run in runs:
        run["node"] = {**node, **({"target": cell.target} if cell.target else {}), "build": build}
        if hw is not None:
            run["hw"] = hw
    return {"runs": runs, "node": node, "environment": node_environment(manager),
            "seconds": time.perf_counter() - started}


def localize(opts: Any, inputs: dict, out: Path) -> Any:
    """``opts`` with shipped files saved on this node and artifacts built under ``out``."""
    import ray

    changes: dict[str, Any] = {"out": out}
    for field, (name, ref) in inputs.items():
        payload = ray.get(ref)
        if field == "artifact":
            key, relative = name
            changes[field] = str(shipping.unpack_artifact(payload, key, relative).path)
        else:
            changes[field] = str(shipping.place_file(payload, name))
    return attrs.evolve(opts, **changes)


def node_facts() -> dict[str, Any]:
    """Which node and process ran this."""
    import ray

    return {"id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(), "pid": os.getpid()}


def node_environment(manager: Any) -> dict:
    global _environment
    if _environment is None:
        from dk.bench import environment

        _environment = environment.collect(manager)
    return _environment


def _open_engine(plugin: str, artifact: Any, device: str, options: dict) -> Any:
    """The engine for the next cell: the worker's last one when it is the same artifact, plugin,
    device and options (cells of one group measure several batch sizes), else a new one, closing
    the old. Returned in a context that leaves it open for the next cell."""
    import contextlib
    import json

    from dk import api

    global _engine
    key = (plugin, str(artifact.path), artifact.manifest.get("cache_key"), device, json.dumps(options, sort_keys=True))
    if _engine is not None and _engine[0] == key:
        return contextlib.nullcontext(_engine[1])
    if _engine is not None:
        _engine, previous = None, _engine[1]
        previous.close()
    engine = api.load_engine(plugin, artifact, device, options)
    _engine = (key, engine)
    return contextlib.nullcontext(engine)


def _artifact(built: dict):
    from dk.artifacts import Artifact
    from dk.errors import DkError

    if built["status"] != "ok":
        raise DkError(f"build failed on {built['node']['hostname']}: {built['error']}")
    if "path" in built:
        return Artifact.load(built["path"]), built["options"]
    artifact = shipping.unpack_artifact(built["payload"], built["cache_key"], built["relative"])
    return artifact, built["options"]
