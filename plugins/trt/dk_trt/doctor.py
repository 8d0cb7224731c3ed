"""What ``dk doctor`` shows for the trt plugin: cheap checks by default, TensorRT and CUDA facts
with ``--probe``."""

from __future__ import annotations

from typing import Any

from dk.specs import PluginInfo

from dk_trt.jetson import dla_count, jetson_board, jetson_model
from dk_trt.versions import missing_reason, no_gpu_reason, trt_distribution

#: Statuses beyond dk.plugins' OK/MISSING_DEPENDENCY/NO_DEVICE: a library version the plugin cannot use.
INCOMPATIBLE = "incompatible"


def describe(probe: bool) -> PluginInfo:
    info = PluginInfo(
        name="trt",
        kind="engine",
        formats_in=["onnx"],
        formats_out=["tensorrt"],
        precisions=["fp32", "fp16", "int8"],
        devices=["cuda", "cuda:N", "dla (Jetson Xavier/Orin)"],
    )
    dist = trt_distribution()
    if dist is not None:
        info.versions[dist[0]] = dist[1]
    reason = missing_reason()
    if reason:
        info.available, info.status, info.reason = False, "missing-dependency", reason
        if probe:  # the DLA count needs no TensorRT when dk-plugin-jetson is installed
            info.details = dla_count().as_details()
        return info
    from dk_trt.cudart import installed_binding

    info.details["cuda_binding"] = installed_binding()
    gpu_problem = no_gpu_reason()
    if gpu_problem:
        info.available, info.status, info.reason = False, "no-device", gpu_problem
        return info
    if probe:
        details, problem = probe_details()
        info.details.update(details)
        if "tensorrt" in details:
            info.versions["tensorrt"] = details["tensorrt"]
        if problem:
            info.available, (info.status, info.reason) = False, problem
        else:
            info.devices = [f"cuda:{details['gpu_index']}"] + [f"dla:{i}" for i in range(details["dla_cores"] or 0)]
    return info


def probe_details() -> tuple[dict[str, Any], tuple[str, str] | None]:
    """TensorRT version, precision path, GPU name and compute capability, DLA cores and who counted
    them; or (status, reason) when CUDA (``no-device``) or TensorRT (``missing-dependency``) is unusable."""
    from dk.errors import DeviceError, DkError

    from dk_trt.build import dla_core_count
    from dk_trt.buffers import gpu_info
    from dk_trt.versions import precision_path, require_tensorrt

    details: dict[str, Any] = {}
    try:
        gpu = gpu_info(0)  # first: a machine with TensorRT but no GPU is no-device, whatever TensorRT says
        details.update(gpu=gpu.name, compute_capability=gpu.compute_capability, gpu_index=gpu.index)
        trt = require_tensorrt()
        details["tensorrt"] = str(trt.__version__)
        details["precision_path"] = precision_path(details["tensorrt"]).describe()
        # the Jetson plugin counts from the device; without it, TensorRT's builder does (on a Jetson only)
        builder = dla_core_count() if jetson_board() is None and jetson_model() is not None else None
        details.update(dla_count(builder_cores=builder).as_details())
    except DeviceError as exc:
        return details, ("no-device", str(exc))
    except DkError as exc:
        return details, ("missing-dependency", str(exc))
    except Exception as exc:  # a broken CUDA/TensorRT install: report it, never crash doctor
        return details, ("no-device", f"TensorRT or CUDA failed to start: {' '.join(str(exc).split())[:200]}")
    return details, None
