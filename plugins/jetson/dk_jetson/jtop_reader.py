"""Jetson statistics from jetson-stats' ``jtop`` service instead of tegrastats.

One snapshot holds the documented jtop properties of one refresh as plain dicts (``cpu``, ``memory``,
``gpu``, ``power``, ``temperature``; jetson-stats 4.x and later): :func:`to_samples` turns it into
the HwSamples, names and units that :func:`dk_jetson.tegrastats.to_samples` produces, so a benchmark
reads the same series whichever source sampled it. Every key is optional.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from typing import Any

from dk.specs import HwSample

log = logging.getLogger("dk.jetson")

#: How often the jtop service refreshes for us (it is a Python service: faster costs CPU on small
#: boards). A jtop service already running for another client keeps its own interval.
INTERVAL_S = 0.5


def connect_jtop(interval_s: float = INTERVAL_S) -> Any:
    """A started ``jtop`` client; raises ImportError without jetson-stats and jtop's JtopException
    (or an OSError) when its service does not answer."""
    from jtop import jtop

    client = jtop(interval=interval_s)
    client.start()
    return client


def read_snapshot(client: Any) -> dict[str, Any]:
    """The documented properties of ``client``'s latest refresh, as plain dicts."""
    return {
        "cpu": client.cpu,
        "memory": dict(client.memory.items()),
        "gpu": dict(client.gpu.items()),
        "power": client.power,
        "temperature": client.temperature,
    }


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _khz_to_mhz(freq: Any) -> float | None:
    cur = _num(freq.get("cur")) if isinstance(freq, Mapping) else None
    return None if cur is None else cur / 1000.0


def to_samples(snapshot: Mapping[str, Any], timestamp: float) -> list[HwSample]:
    """HwSamples named ``jetson.*`` like tegrastats': memory in MiB (jtop: KB), frequencies in MHz
    (jtop: kHz), power in W (jtop: mW), utilisation in %, temperatures in C."""
    out: list[HwSample] = []

    def add(metric: str, value: Any, unit: str) -> None:
        value = _num(value)
        if value is not None:
            out.append(HwSample(f"jetson.{metric}", value, unit, timestamp, "jetson"))

    memory = snapshot.get("memory") or {}
    for key, metric in (("RAM", "ram_used"), ("SWAP", "swap_used")):
        used = _num((memory.get(key) or {}).get("used"))
        add(metric, None if used is None else used / 1024.0, "MiB")
    cores = [c for c in (snapshot.get("cpu") or {}).get("cpu") or [] if isinstance(c, Mapping)]
    utils = [None if c.get("online") is False or _num(c.get("idle")) is None else 100.0 - c["idle"] for c in cores]
    online = [u for u in utils if u is not None]
    add("cpu.util", sum(online) / len(online) if online else None, "%")
    for i, (core, util) in enumerate(zip(cores, utils)):
        add(f"cpu{i}.util", util, "%")
        if core.get("online") is not False:
            add(f"cpu{i}.freq", _khz_to_mhz(core.get("freq")), "MHz")
    emc = memory.get("EMC") or {}
    if emc.get("online") is not False:
        add("emc.util", emc.get("val"), "%")
        add("emc.freq", _khz_to_mhz(emc), "MHz")
    for i, gpu in enumerate((snapshot.get("gpu") or {}).values()):
        key = "gpu" if i == 0 else f"gpu{i + 1}"  # as tegrastats' GR3D, GR3D2
        add(f"{key}.util", (gpu.get("status") or {}).get("load"), "%")
        add(f"{key}.freq", _khz_to_mhz(gpu.get("freq")), "MHz")
    for name, sensor in (snapshot.get("temperature") or {}).items():
        sensor = sensor or {}
        celsius = _num(sensor.get("temp"))
        if sensor.get("online") is not False and celsius is not None and celsius > -100:  # -256: offline
            add(f"temp.{str(name).lower().replace(' ', '_')}", celsius, "C")
    power = snapshot.get("power") or {}
    total = power.get("tot") or {}
    rails = dict(power.get("rail") or {})
    if total.get("name"):  # jtop moves the input rail (VDD_IN, POM_5V_IN) out of the rails into the total
        rails[total["name"]] = total
    for name, rail in rails.items():
        rail = rail or {}
        milliwatts = _num(rail.get("power"))
        if rail.get("online") is not False and milliwatts is not None:
            add(f"rail.{name}", milliwatts / 1000.0, "W")
    milliwatts = _num(total.get("power"))
    add("power", None if milliwatts is None or not rails else milliwatts / 1000.0, "W")
    return out


class JtopReader:
    """A connected jtop client; :meth:`samples` converts its latest refresh."""

    def __init__(self, client: Any):
        self._client = client
        atexit.register(self.close)

    def samples(self, timestamp: float) -> list[HwSample]:
        from dk.errors import DeviceError

        if not self._client.ok(spin=True):  # raises what broke jtop's reader thread, if anything did
            raise DeviceError("the jtop client stopped (its service went away); restart the run")
        return to_samples(read_snapshot(self._client), timestamp)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception as exc:  # noqa: BLE001 - closing at exit: the service may already be gone
            log.debug("closing the jtop client failed: %s", exc)
