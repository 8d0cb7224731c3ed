"""dk platform plugin ``rpi``: Raspberry Pi temperature, clock and throttling (vcgencmd) and
thermal zones and CPU frequencies (sysfs)."""

from __future__ import annotations

from dk.hooks import hookimpl
from dk.specs import HwSample, PluginInfo


@hookimpl
def dk_describe(probe: bool) -> PluginInfo:
    from dk_rpi import sampling, sysfs

    info = PluginInfo(name="rpi", kind="platform", devices=["cpu"], details={"hw_stats": [
        "rpi.soc_temp", "rpi.arm_freq", "rpi.throttled", "rpi.temp.*", "rpi.cpuN.freq"]})
    reason = sampling.unavailable_reason()
    if reason is not None:
        info.available, info.status, info.reason, info.devices = False, "no-device", reason, []
        return info
    info.details.update(sampling.facts())
    target = sysfs.board_target(sysfs.board_model())
    info.targets = [target] if target else []
    return info


@hookimpl
def dk_collect_hw_stats() -> list[HwSample]:
    from dk_rpi import sampling

    return sampling.sample() if sampling.here() else []
