"""What the rpi plugin samples: sysfs on every call, vcgencmd (a process per call) at most once a second."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from dk.specs import HwSample
from dk_rpi import sysfs, vcgencmd

VCGENCMD_PERIOD_S = 1.0
_cache: dict[str, float | None] = {}
_cached_at = 0.0


def unavailable_reason(model_path: Path = Path("/proc/device-tree/model")) -> str | None:
    model = sysfs.board_model(model_path)
    if model is None:
        return f"not a Raspberry Pi (no {model_path})"
    if "raspberry pi" not in model.lower():
        return f"not a Raspberry Pi ({model_path} says {model!r})"
    return None


@functools.lru_cache(maxsize=1)
def here() -> bool:
    return unavailable_reason() is None


def facts() -> dict[str, object]:
    throttled = vcgencmd.parse_throttled(vcgencmd.run("get_throttled") or "")
    return {
        "model": sysfs.board_model(),
        "vcgencmd": shutil.which("vcgencmd") or "not found (temperature from sysfs only)",
        "throttled": None if throttled is None else f"{throttled:#x} ({', '.join(vcgencmd.throttle_flags(throttled)) or 'none'})",
    }


def _vcgencmd_values() -> dict[str, float | None]:
    """SoC temperature, ARM clock and throttle bits, refreshed at most every VCGENCMD_PERIOD_S."""
    global _cached_at
    now = time.monotonic()
    if now - _cached_at >= VCGENCMD_PERIOD_S:
        _cached_at = now
        _cache["soc_temp"] = vcgencmd.parse_temp(vcgencmd.run("measure_temp") or "")
        _cache["arm_freq"] = vcgencmd.parse_clock(vcgencmd.run("measure_clock", "arm") or "")
        throttled = vcgencmd.parse_throttled(vcgencmd.run("get_throttled") or "")
        _cache["throttled"] = None if throttled is None else float(throttled & 0xF)  # the "now" bits
    return dict(_cache)


def sample() -> list[HwSample]:
    now = time.time()
    out = []
    units = {"soc_temp": "C", "arm_freq": "MHz", "throttled": "bits"}
    for name, value in _vcgencmd_values().items():
        if value is not None:
            out.append(HwSample(f"rpi.{name}", value, units[name], now, "rpi"))
    for zone, celsius in sysfs.thermal_zones().items():
        out.append(HwSample(f"rpi.temp.{zone}", celsius, "C", now, "rpi"))
    for cpu, mhz in sysfs.cpu_freqs().items():
        out.append(HwSample(f"rpi.cpu{cpu}.freq", mhz, "MHz", now, "rpi"))
    return out
