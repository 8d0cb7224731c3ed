"""dk platform plugin ``jetson``: Jetson statistics (GPU, EMC, CPU cores, temperatures, power
rails) from jtop when jetson-stats' service answers, else from tegrastats, and board facts (model,
L4T release, DLA cores) for ``dk doctor`` and the trt plugin."""

from __future__ import annotations

from dk.hooks import hookimpl
from dk.specs import HwSample, PluginInfo


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_jetson import board, source

    info = PluginInfo(name="jetson", kind="platform", details={"hw_stats": ["jetson.gpu.util", "jetson.emc.util",
                      "jetson.cpuN.util", "jetson.temp.*", "jetson.rail.*", "jetson.power"]})
    if not board.is_jetson():
        info.available, info.status, info.reason = False, "no-device", board.unavailable_reason() or "not a Jetson"
        return info
    problem = board.tegrastats_problem()
    # --probe connects to jtop's service (and lets it go again); otherwise cheap checks say which it would be
    chosen = source.select_source(problem, close=True) if probe else source.preview_source(problem)
    info.details.update(hw_stats_source=chosen.kind, hw_stats_source_reason=chosen.reason)
    if chosen.kind == "none":
        info.available, info.status, info.reason = False, "no-device", chosen.reason
    cores = board.dla_cores()
    info.devices = ["cuda", "dla"] if cores else ["cuda"]
    info.details.update(model=board.jetson_model(), l4t=board.l4t_release(), dla_cores=cores)
    target = board.target_tag(board.jetson_model())
    info.targets = [target] if target else []
    return info


@hookimpl
def dk_collect_hw_stats() -> list[HwSample]:
    from dk_jetson.source import active

    return active().samples()
