"""Parsing ``vcgencmd`` answers (``temp=47.2'C``, ``frequency(48)=1500398464``, ``throttled=0x50005``,
``volt=0.8500V``) and running it. An error answer (``VCHI initialization failed``) parses to None."""

from __future__ import annotations

import re
import subprocess

_TEMP = re.compile(r"^temp=(-?\d+(?:\.\d+)?)'C$")
_CLOCK = re.compile(r"^frequency\(\d+\)=(\d+)$")
_THROTTLED = re.compile(r"^throttled=(0x[0-9a-fA-F]+)$")
_VOLT = re.compile(r"^volt=(\d+(?:\.\d+)?)V$")

#: get_throttled bits (Raspberry Pi documentation of vcgencmd).
THROTTLE_BITS = {
    0: "under-voltage detected", 1: "arm frequency capped", 2: "currently throttled", 3: "soft temperature limit active",
    16: "under-voltage has occurred", 17: "arm frequency capping has occurred", 18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def parse_temp(text: str) -> float | None:
    """``temp=62.3'C`` -> 62.3 (degrees C)."""
    m = _TEMP.match(text.strip())
    return float(m[1]) if m else None


def parse_clock(text: str) -> float | None:
    """``frequency(45)=1400000000`` -> 1400.0 (MHz)."""
    m = _CLOCK.match(text.strip())
    return int(m[1]) / 1e6 if m else None


def parse_volts(text: str) -> float | None:
    """``volt=1.2000V`` -> 1.2."""
    m = _VOLT.match(text.strip())
    return float(m[1]) if m else None


def parse_throttled(text: str) -> int | None:
    """``throttled=0x50005`` -> 0x50005."""
    m = _THROTTLED.match(text.strip())
    return int(m[1], 16) if m else None


def throttle_flags(value: int) -> list[str]:
    """The documented conditions set in a get_throttled value, lowest bit first."""
    return [name for bit, name in sorted(THROTTLE_BITS.items()) if value >> bit & 1]


def run(*args: str, command: str = "vcgencmd", timeout: float = 1.0) -> str | None:
    """One vcgencmd call's answer, or None when it cannot be run."""
    try:
        proc = subprocess.run([command, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return (proc.stdout or proc.stderr).strip()
