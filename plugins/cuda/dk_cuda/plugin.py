"""dk platform plugin ``cuda``: GPU utilisation, memory, temperature, power and energy via NVML.

Thin hooks only: nvidia-ml-py is imported inside them (through :mod:`dk_cuda.nvml`).
"""

from __future__ import annotations

from dk.hooks import hookimpl
from dk.specs import HwSample, PluginInfo

METRICS = ["gpuN.util", "gpuN.mem_util", "gpuN.mem_used", "gpuN.temp", "gpuN.power", "gpuN.energy"]


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from importlib import metadata

    from dk_cuda.nvml import NvmlUnavailable, session

    info = PluginInfo(name="cuda", kind="platform", devices=["cuda"], details={"hw_stats": METRICS})
    try:
        nvml = session()
    except NvmlUnavailable as exc:
        info.available, info.status, info.reason = False, exc.status, exc.reason
        info.devices = []
        return info
    info.versions = {"nvidia-ml-py": metadata.version("nvidia-ml-py")}
    info.details.update(nvml.facts())
    info.targets = nvml.targets()
    return info


@hookimpl
def dk_collect_hw_stats() -> list[HwSample]:
    from dk_cuda.nvml import NvmlUnavailable, session

    try:
        nvml = session()
    except NvmlUnavailable:
        return []
    return nvml.sample()
