"""Is this a Jetson, and how many DLA cores does it have? Asked of the Jetson platform plugin
(``dk_jetson.board``: the device's nvdla platform devices) when it is installed; otherwise of the
module name only, and TensorRT's ``builder.num_DLA_cores`` gives the count at build time.
Files only, so every check runs before TensorRT is imported, on any machine."""

from __future__ import annotations

import importlib
import platform
from pathlib import Path
from typing import Any

import attrs

#: Module names with DLA cores (Nano, TX1/TX2 and Orin Nano have none), for the check without the plugin.
DLA_MODULES = ("xavier", "orin")
NO_DLA_MODULES = ("orin nano",)
PLUGIN_SOURCE = "dk-plugin-jetson: nvdla devices under /sys/devices"
NOT_JETSON = "not a Jetson (no /etc/nv_tegra_release, no Jetson in /proc/device-tree/model)"


@attrs.frozen
class DlaCount:
    """DLA cores of this machine and where the number came from.

    :ivar cores: The count; None when only TensorRT can tell (a Xavier/Orin without dk-plugin-jetson).
    :ivar source: Who counted: the Jetson plugin, the module name, or TensorRT's builder.
    :ivar model: The Jetson module name, None off Jetson.
    """

    cores: int | None
    source: str
    model: str | None

    def as_details(self) -> dict[str, Any]:
        """The ``dk doctor`` details: ``dla_cores`` and ``dla_source``."""
        return {"dla_cores": self.cores, "dla_source": self.source}


def jetson_board() -> Any:
    """``dk_jetson.board`` when dk-plugin-jetson is installed, else None (imported lazily)."""
    try:
        return importlib.import_module("dk_jetson.board")
    except ImportError:
        return None


def jetson_model(root: str | Path = "/") -> str | None:
    """The Jetson module name (``NVIDIA Jetson AGX Orin``), ``"Jetson"`` when only
    ``/etc/nv_tegra_release`` says so, or None on any other machine."""
    board = jetson_board()
    if board is not None:
        return board.jetson_model(Path(root))
    root = Path(root)
    try:
        model = (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00\n ").decode(errors="replace")
    except OSError:
        model = ""
    if "jetson" in model.lower() or "tegra" in model.lower():
        return model
    if (root / "etc/nv_tegra_release").is_file():
        return model or "Jetson"
    return None


def dla_count(root: str | Path = "/", builder_cores: int | None = None) -> DlaCount:
    """The DLA cores under filesystem ``root``; ``builder_cores`` (TensorRT's ``num_DLA_cores``, when
    the caller has TensorRT) is used only where dk-plugin-jetson is not installed."""
    board, model = jetson_board(), jetson_model(root)
    if model is None:
        who = "dk-plugin-jetson" if board is not None else "dk-plugin-trt (dk-plugin-jetson is not installed)"
        return DlaCount(0, f"{who}: {NOT_JETSON}", None)
    if board is not None:
        return DlaCount(board.dla_cores(Path(root) / "sys/devices"), PLUGIN_SOURCE, model)
    if builder_cores is not None:
        return DlaCount(int(builder_cores), "TensorRT builder.num_DLA_cores", model)
    lower = model.lower()
    if any(m in lower for m in NO_DLA_MODULES) or (model != "Jetson" and not any(m in lower for m in DLA_MODULES)):
        return DlaCount(0, "module name (only Jetson Xavier and Orin, not Orin Nano, have DLA cores)", model)
    return DlaCount(None, "unknown before the build: TensorRT counts them (pip install ./plugins/jetson to "
                          "count them from the device)", model)


def dla_refusal(root: str | Path = "/", core: int | None = None) -> str | None:
    """Why DLA core ``core`` (any core when None) cannot be used on this machine, or None."""
    count = dla_count(root)
    if count.model is None:
        return (
            f"DLA cores exist only on Jetson Xavier and Orin modules; this machine "
            f"({platform.machine()}, no /etc/nv_tegra_release) is not a Jetson: drop dla_core"
        )
    if count.cores == 0:
        return f"{count.model} has no DLA cores (counted by {count.source}): drop dla_core"
    if core is not None and count.cores is not None and core >= count.cores:
        return (f"{count.model} has {count.cores} DLA core(s) (counted by {count.source}): use dla_core=0"
                + (f"..{count.cores - 1}" if count.cores > 1 else ""))
    return None
