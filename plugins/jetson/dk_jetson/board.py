"""Is this a Jetson, which one, and how many DLA cores it has. Files only, so every check runs (and
is tested against a fake root) anywhere."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

RELEASE = Path("/etc/nv_tegra_release")
_DLA = re.compile(r"\.nvdla(\d+)$")
#: Where NVDLA platform devices appear under /sys/devices, by L4T release:
#: ``platform/13e40000.host1x/15880000.nvdla0`` (Orin), ``platform/host1x/...``, ``13e10000.host1x/...``
#: (Xavier, L4T 32). Only enabled device-tree nodes become devices, so disabled DLAs are not counted.
_DLA_GLOBS = ("*.nvdla*", "*/*.nvdla*", "*/*/*.nvdla*")


def is_jetson(release: Path = RELEASE) -> bool:
    """A Jetson by its L4T release file, its tegrastats, or its device-tree model."""
    return release.exists() or shutil.which("tegrastats") is not None or jetson_model() is not None


def tegrastats_problem() -> str | None:
    """Why tegrastats cannot be run here, or None."""
    if shutil.which("tegrastats") is None:
        return "tegrastats is not on PATH (it ships with L4T in /usr/bin; install nvidia-l4t-tools)"
    return None


def unavailable_reason(release: Path = RELEASE) -> str | None:
    """None on a Jetson with tegrastats; else why the plugin cannot sample here."""
    has_release, has_tool = release.exists(), shutil.which("tegrastats") is not None
    if not has_release and not has_tool:
        return f"not a Jetson (no {release} and no tegrastats on PATH)"
    return tegrastats_problem()


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


def jetson_model(root: Path = Path("/")) -> str | None:
    """The module name (``NVIDIA Jetson AGX Orin Developer Kit``) under filesystem ``root``, ``"Jetson"``
    when only ``etc/nv_tegra_release`` says so, or None when ``root`` is not a Jetson."""
    root = Path(root)
    name = model(root / "proc/device-tree/model") or ""
    if "jetson" in name.lower() or "tegra" in name.lower():
        return name
    if (root / "etc/nv_tegra_release").is_file():
        return name or "Jetson"
    return None


def dla_cores(root: Path = Path("/sys/devices")) -> int:
    """How many NVDLA cores have a platform device (``*.nvdla0``, ``*.nvdla1``) at most three levels
    under ``root``; 0 on Nano, TX1/TX2, Orin Nano and every machine that is not a Jetson."""
    found = set()
    for pattern in _DLA_GLOBS:
        for path in Path(root).glob(pattern):
            m = _DLA.search(path.name)
            if m and path.is_dir():
                found.add(m[1])
    return len(found)


#: Jetson module families, as they appear in the device-tree model, most specific first.
_FAMILIES = ("orin", "xavier", "tx2", "tx1", "nano")


def target_tag(model: str | None) -> str | None:
    """The fleet target tag of a Jetson module: ``jetson-orin`` for "NVIDIA Jetson AGX Orin Developer
    Kit", ``jetson-xavier``, ``jetson-nano``...; ``jetson`` when the family is not recognised."""
    if not model:
        return None
    lowered = model.lower()
    if "jetson" not in lowered and "tegra" not in lowered:
        return None
    return next((f"jetson-{family}" for family in _FAMILIES if family in lowered), "jetson")
