"""Is this a Jetson with DLA cores? Read from files only, so the check runs anywhere."""

from __future__ import annotations

import platform
from pathlib import Path

#: Jetson modules that have DLA cores (Nano, TX1 and TX2 have none).
DLA_MODULES = ("xavier", "orin")


def jetson_model(root: str | Path = "/") -> str | None:
    """The Jetson module name (``NVIDIA Jetson AGX Orin``), ``"Jetson"`` when only
    ``/etc/nv_tegra_release`` says so, or None on any other machine."""
    root = Path(root)
    model_file = root / "proc/device-tree/model"
    try:
        model = model_file.read_bytes().rstrip(b"\x00\n ").decode(errors="replace")
    except OSError:
        model = ""
    if "jetson" in model.lower() or "tegra" in model.lower():
        return model
    if (root / "etc/nv_tegra_release").is_file():
        return model or "Jetson"
    return None


def dla_refusal(root: str | Path = "/") -> str | None:
    """Why DLA cannot be used on this machine, or None on a Jetson Xavier/Orin."""
    model = jetson_model(root)
    if model is None:
        return (
            f"DLA cores exist only on Jetson Xavier and Orin modules; this machine "
            f"({platform.machine()}, no /etc/nv_tegra_release) is not a Jetson: drop dla_core"
        )
    if model != "Jetson" and not any(m in model.lower() for m in DLA_MODULES):
        return f"{model} has no DLA cores (only Jetson Xavier and Orin have them): drop dla_core"
    return None
