"""dk platform plugin ``jetson``: tegrastats statistics (GPU, EMC, CPU cores, temperatures, power
rails) and board facts (model, L4T release, DLA cores) for ``dk doctor`` and the trt plugin."""

from __future__ import annotations

from dk.hooks import hookimpl
from dk.specs import HwSample, PluginInfo


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_jetson import board

    info = PluginInfo(name="jetson", kind="platform", details={"hw_stats": ["jetson.gpu.util", "jetson.emc.util",
                      "jetson.cpuN.util", "jetson.temp.*", "jetson.rail.*", "jetson.power"]})
    reason = board.unavailable_reason()
    if reason is not None:
        info.available, info.status, info.reason = False, "no-device", reason
        return info
    info.devices = ["cuda", "dla"] if board.dla_cores() else ["cuda"]
    info.details.update(model=board.model(), l4t=board.l4t_release(), dla_cores=board.dla_cores())
    return info


@hookimpl
def dk_collect_hw_stats() -> list[HwSample]:
    import time

    from dk_jetson import board
    from dk_jetson.reader import reader
    from dk_jetson.tegrastats import parse_line, to_samples

    if not board.here():
        return []
    line = reader().latest
    return to_samples(parse_line(line), time.time()) if line else []
