"""Parsing one line of ``tegrastats`` output, for every Jetson generation.

Fields differ by board and JetPack (``POM_5V_IN 1997/2089`` on Nano, ``VDD_IN 4968mW/4968mW`` on
Orin, ``GR3D_FREQ 0%``, ``0%@76``, ``0%@[510]`` or ``0%@[0,0]``, cores ``off``, sensors at
``-256C`` when absent, no power rails without sudo): every field is optional.
"""

from __future__ import annotations

import re

import attrs

from dk.specs import HwSample

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_CORE = re.compile(r"(\d+)%(?:@(\d+))?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GPU = re.compile(r"\b(GR3D\d*)_FREQ (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"(?<![\w%@])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")

#: Rails that measure the whole module's input, preferred as total power where present.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
#: Placeholders, not measurements: unconnected rails and the Nano/TX PMIC's fixed 100 C.
_NOT_RAILS = {"NC", "RAM", "SWAP", "IRAM"}


@attrs.define
class TegraStats:
    """One tegrastats line; ``None`` or empty where the line has no such field."""

    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    swap_used_mb: float | None = None
    cpu: list[tuple[float | None, float | None]] = attrs.field(factory=list)  # (util %, MHz); None: off
    emc_util: float | None = None
    emc_mhz: float | None = None
    gpu: dict[str, tuple[float | None, float | None]] = attrs.field(factory=dict)  # GR3D -> (util %, MHz)
    temps: dict[str, float] = attrs.field(factory=dict)
    rails_mw: dict[str, tuple[float, float]] = attrs.field(factory=dict)  # name -> (now, average)

    @property
    def total_power_w(self) -> float | None:
        """The input rail where the board has one, else the sum of the reported rails."""
        for rail in INPUT_RAILS:
            if rail in self.rails_mw:
                return self.rails_mw[rail][0] / 1000.0
        if not self.rails_mw:
            return None
        return sum(now for now, _ in self.rails_mw.values()) / 1000.0


def parse_line(line: str) -> TegraStats:
    stats = TegraStats()
    if m := _RAM.search(line):
        stats.ram_used_mb, stats.ram_total_mb = float(m[1]), float(m[2])
    if m := _SWAP.search(line):
        stats.swap_used_mb = float(m[1])
    if m := _CPU.search(line):
        shared = float(m[2]) if m[2] else None  # old format: CPU [12%,3%]@1224
        for entry in m[1].split(","):
            core = _CORE.fullmatch(entry.strip())
            if core is None:
                stats.cpu.append((None, None))  # "off"
            else:
                stats.cpu.append((float(core[1]), float(core[2]) if core[2] else shared))
    if m := _EMC.search(line):
        stats.emc_util, stats.emc_mhz = float(m[1]), float(m[2]) if m[2] else None
    for m in _GPU.finditer(line):
        freqs = [float(f) for f in (m[3] or "").split(",") if f]
        stats.gpu[m[1]] = (float(m[2]) if m[2] else None, max(freqs) if freqs else None)
    for name, value in _TEMP.findall(line):
        celsius = float(value)
        if celsius <= -100 or (name.upper() == "PMIC" and celsius == 100.0):
            continue  # -256C: sensor absent; PMIC@100C: a fixed placeholder
        stats.temps[name.lower()] = celsius
    for name, now, avg in _RAIL.findall(line):
        if name not in _NOT_RAILS:
            stats.rails_mw[name] = (float(now), float(avg))
    return stats


def to_samples(stats: TegraStats, timestamp: float) -> list[HwSample]:
    """HwSamples named ``jetson.*`` (``jetson.gpu.util``, ``jetson.cpu3.util``, ``jetson.power`` ...)."""
    out: list[HwSample] = []

    def add(metric: str, value: float | None, unit: str) -> None:
        if value is not None:
            out.append(HwSample(f"jetson.{metric}", float(value), unit, timestamp, "jetson"))

    add("ram_used", stats.ram_used_mb, "MiB")
    add("swap_used", stats.swap_used_mb, "MiB")
    online = [util for util, _ in stats.cpu if util is not None]
    add("cpu.util", sum(online) / len(online) if online else None, "%")
    for i, (util, mhz) in enumerate(stats.cpu):
        add(f"cpu{i}.util", util, "%")
        add(f"cpu{i}.freq", mhz, "MHz")
    add("emc.util", stats.emc_util, "%")
    add("emc.freq", stats.emc_mhz, "MHz")
    for name, (util, mhz) in stats.gpu.items():
        key = "gpu" if name == "GR3D" else name.lower().replace("gr3d", "gpu")
        add(f"{key}.util", util, "%")
        add(f"{key}.freq", mhz, "MHz")
    for name, celsius in stats.temps.items():
        add(f"temp.{name}", celsius, "C")
    for name, (now, _) in stats.rails_mw.items():
        add(f"rail.{name}", now / 1000.0, "W")
    add("power", stats.total_power_w, "W")
    return out
