"""dk plugin ``ray``: the ``ray`` sweep runner (``dk run bench --ray ADDRESS``).

Thin hooks only: ray is imported inside the runner, when a sweep starts.
"""

from __future__ import annotations

from typing import Any, Mapping

from dk.hooks import hookimpl
from dk.specs import PluginInfo

INSTALL = "pip install ./plugins/ray (ray) on the machine that starts the sweep and on every node"


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    import importlib.util
    from importlib import metadata

    info = PluginInfo(name="ray", kind="runner", details={"runner": "ray", "usage": "dk run bench --ray auto"})
    if importlib.util.find_spec("ray") is None:
        info.available, info.status, info.reason = False, "missing-dependency", f"needs ray: {INSTALL}"
        return info
    info.versions = {"ray": metadata.version("ray")}
    return info


@hookimpl
def dk_sweep_runner(name: str, address: str | None, options: Mapping[str, Any]) -> Any:
    if name != "ray":
        return None
    from dk_ray.runner import RayRunner

    return RayRunner(address=address or "auto", shared_dir=options.get("shared_dir"))
