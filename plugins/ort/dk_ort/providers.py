"""Devices <-> ONNX Runtime execution providers, and the installed library versions."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any

from dk.errors import DeviceError, MissingDependency

#: Distributions that provide the ``onnxruntime`` import package, most common first.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")

#: Execution provider -> the dk device it serves.
PROVIDER_DEVICES = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "tensorrt",
}

DEVICES = ("cpu", "cuda", "cuda:N", "tensorrt", "tensorrt:N")

_INSTALL_HINT = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (and uninstall the CPU-only onnxruntime)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu with TensorRT libraries on the library path",
}


def ort_distribution() -> tuple[str, str] | None:
    """(distribution, version) of the installed ONNX Runtime, from package metadata only."""
    for dist in ORT_DISTRIBUTIONS:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def ort_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def require_ort() -> Any:
    """Import onnxruntime or raise :class:`MissingDependency` saying what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependency("the ort plugin needs onnxruntime: pip install onnxruntime") from None
    return onnxruntime


def tool_versions() -> dict[str, str]:
    """Versions that enter an artifact's cache key and manifest."""
    import onnx

    return {"onnxruntime": require_ort().__version__, "onnx": onnx.__version__}


def devices_from_providers(providers: list[str]) -> list[str]:
    return [PROVIDER_DEVICES[p] for p in providers if p in PROVIDER_DEVICES]


def providers_for(device: str) -> list[Any]:
    """The provider list for ``device`` (``cpu``, ``cuda[:N]``, ``tensorrt[:N]``), or
    :class:`DeviceError` when it is unknown or its provider is missing from this onnxruntime."""
    ort = require_ort()
    kind, _, index = device.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"]
    chain = {"cuda": ["CUDAExecutionProvider"], "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}
    if kind not in chain or (index and not index.isdigit()):
        raise DeviceError(f"unknown device {device!r} for plugin ort; valid devices: {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    wanted = chain[kind][0]
    if wanted not in available:
        raise DeviceError(
            f"device {device!r} needs ONNX Runtime's {wanted}, which this onnxruntime lacks "
            f"(it has {', '.join(available)}): {_INSTALL_HINT[wanted]}"
        )
    options = {"device_id": int(index or 0)}
    return [(p, options) for p in chain[kind] if p in available] + ["CPUExecutionProvider"]
