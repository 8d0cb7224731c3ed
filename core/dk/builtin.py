"""The core's own plugin (registered as ``core``): classification and detection post-processing and the
host's CPU/RAM statistics. Always registered, never dispatched to with ``--plugin``."""

from __future__ import annotations

import time
from typing import Any, Mapping

from dk.hooks import hookimpl
from dk.specs import HwSample, PluginInfo


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    return PluginInfo(
        name="core",
        kind="platform",
        details={"hw_stats": ["cpu.util", "process.rss", "system.ram_used"]},
    )


@hookimpl
def dk_postprocess(task: str, outputs: Mapping[str, Any], meta: Mapping[str, Any]) -> list[Any] | None:
    if task == "detection":
        from dk.vision.detection import postprocess_detections

        return postprocess_detections(outputs, meta)
    if task != "classification":
        return None
    from dk.vision.classification import classify

    return classify(next(iter(outputs.values())), meta.get("labels"), top_k=int(meta.get("top_k", 5)))


@hookimpl
def dk_collect_hw_stats() -> list[HwSample]:
    import psutil

    now = time.time()
    vm = psutil.virtual_memory()
    return [
        HwSample("cpu.util", psutil.cpu_percent(interval=None), "%", now, "core"),
        HwSample("process.rss", psutil.Process().memory_info().rss / 2**20, "MiB", now, "core"),
        HwSample("system.ram_used", (vm.total - vm.available) / 2**20, "MiB", now, "core"),
    ]
