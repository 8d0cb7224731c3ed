"""What ``dk doctor`` shows for the torch2trt plugin: missing libraries, a TensorRT it cannot use
(11.x: ``incompatible``), no GPU (``no-device``), from cheap checks; the GPU with ``--probe``."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from dk.specs import PluginInfo

from dk_trt.doctor import INCOMPATIBLE
from dk_trt.versions import no_gpu_reason, torch2trt_incompatibility, trt_distribution

PLUGIN = "torch2trt"
INSTALL_HINT = (
    "torch2trt is not on PyPI: git clone https://github.com/NVIDIA-AI-IOT/torch2trt && pip install ./torch2trt "
    "(needs torch with CUDA and TensorRT 10.x: pip install 'tensorrt<11')"
)


def missing_reason() -> str | None:
    missing = [m for m in ("torch", "tensorrt", "torch2trt") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)}: {INSTALL_HINT}" if missing else None


def unusable() -> tuple[str, str] | None:
    """(status, reason) when torch2trt cannot work here, from cheap checks only; None when it can."""
    reason = missing_reason()
    if reason:
        return "missing-dependency", reason
    dist = trt_distribution()
    reason = torch2trt_incompatibility(dist[1] if dist else None)
    if reason:
        return INCOMPATIBLE, reason
    reason = no_gpu_reason()
    if reason:
        return "no-device", reason
    return None


def require_usable() -> None:
    """Raise the error :func:`unusable` stands for: DeviceError for no-device, else MissingDependency."""
    from dk.errors import DeviceError, MissingDependency

    problem = unusable()
    if problem:
        status, reason = problem
        raise (DeviceError if status == "no-device" else MissingDependency)(
            f"the torch2trt plugin cannot run here ({status}): {reason}")


def describe(probe: bool) -> PluginInfo:
    info = PluginInfo(name=PLUGIN, kind="engine", formats_in=["torch"], formats_out=["torch2trt"],
                      precisions=["fp32", "fp16", "int8"], devices=["cuda", "cuda:N"])
    for dist in ("torch", "torch2trt"):
        try:
            info.versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    trt = trt_distribution()
    if trt is not None:
        info.versions[trt[0]] = trt[1]
    problem = unusable()
    if problem:
        info.available, (info.status, info.reason) = False, problem
    elif probe:
        import torch

        from dk_trt.versions import require_tensorrt

        version = str(require_tensorrt().__version__)  # JetPack's TensorRT has no pip metadata
        info.versions.setdefault("tensorrt", version)
        incompatible = torch2trt_incompatibility(version)
        if incompatible:
            info.available, info.status, info.reason = False, INCOMPATIBLE, incompatible
        elif not torch.cuda.is_available():
            info.available, info.status = False, "no-device"
            info.reason = "torch2trt needs CUDA, and torch sees no CUDA device here"
        else:
            info.details = {"gpu": torch.cuda.get_device_name(0)}
    return info
