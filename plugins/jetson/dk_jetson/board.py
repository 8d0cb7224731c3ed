"""Is this a Jetson, which one, and how many DLA cores it has."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

RELEASE = Path("/etc/nv_tegra_release")
_DLA = re.compile(r"\.nvdla(\d+)$")


def unavailable_reason(release: Path = RELEASE) -> str | None:
    """None on a Jetson with tegrastats; else why the plugin cannot sample here."""
    has_release, has_tool = release.exists(), shutil.which("tegrastats") is not None
    if not has_release and not has_tool:
        return f"not a Jetson (no {release} and no tegrastats on PATH)"
    if not has_tool:
        return "tegrastats is not on PATH (it ships with L4T in /usr/bin; install nvidia-l4t-tools)"
    return None


@functools.lru_cache(maxsize=1)
def here() -> bool:
    """Whether this machine is a Jetson with tegrastats (checked once per process)."""
    return unavailable_reason() is None


def l4t_release(release: Path = RELEASE) -> str | None:
    """The first line of /etc/nv_tegra_release, e.g. ``# R35 (release), REVISION: 4.1, ...``."""
    try:
        return release.read_text().splitlines()[0].lstrip("# ").strip()
    except (OSError, IndexError):
        return None


def model(path: Path = Path("/proc/device-tree/model")) -> str | None:
    try:
        return path.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def dla_cores(root: Path = Path("/sys/devices/platform")) -> int:
    """How many NVDLA cores the device tree exposes (``*.nvdla0``, ``*.nvdla1``), at most two levels
    under ``root`` (``15880000.nvdla0`` or ``bus@0/15880000.nvdla0``)."""
    found = set()
    for pattern in ("*", "*/*"):
        for path in root.glob(pattern):
            m = _DLA.search(path.name)
            if m and path.is_dir():
                found.add(m[1])
    return len(found)
