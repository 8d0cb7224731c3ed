"""Thermal zones and cpufreq from sysfs (cheap reads, fine for every sample)."""

from __future__ import annotations

from pathlib import Path


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def thermal_zones(root: Path = Path("/sys/class/thermal")) -> dict[str, float]:
    """``{type: degrees C}`` of every thermal zone (sysfs reports millidegrees)."""
    temps = {}
    for zone in sorted(root.glob("thermal_zone*")):
        milli = read_int(zone / "temp")
        if milli is None:
            continue
        try:
            name = (zone / "type").read_text().strip() or zone.name
        except OSError:
            name = zone.name
        temps[name if name not in temps else f"{name}.{zone.name}"] = milli / 1000.0
    return temps


def cpu_freqs(root: Path = Path("/sys/devices/system/cpu")) -> dict[int, float]:
    """``{cpu index: MHz}`` from ``cpuN/cpufreq/scaling_cur_freq`` (kHz)."""
    freqs = {}
    for cpu in root.glob("cpu[0-9]*"):
        khz = read_int(cpu / "cpufreq" / "scaling_cur_freq")
        if khz is not None and cpu.name[3:].isdigit():
            freqs[int(cpu.name[3:])] = khz / 1000.0
    return dict(sorted(freqs.items()))


def board_model(path: Path = Path("/proc/device-tree/model")) -> str | None:
    try:
        return path.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def board_target(model: str | None) -> str | None:
    """``rpi4`` for "Raspberry Pi 4 Model B Rev 1.4", ``rpi5``, ``rpi-zero2``...; None for other boards."""
    import re

    match = re.match(r"raspberry pi (zero ?\d*|compute module ?\d*|\d+)", (model or "").strip().lower())
    if match is None:
        return None
    kind = match[1].replace("compute module", "cm").replace(" ", "")
    return "rpi" + (kind if kind[0].isdigit() else "-" + kind)
