"""The OpenVINO library: installed versions (from metadata), one shared Core, device names, options."""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import weakref
from collections.abc import Mapping
from typing import Any

from dk.errors import DeviceError, DkError, MissingDependency

PLUGIN = "openvino"
DEVICES = ("CPU", "GPU", "GPU.N", "NPU", "AUTO")
#: Virtual devices that run on other devices (``AUTO:GPU,CPU``, ``MULTI:...``, ``HETERO:...``).
META_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")

#: Every ``--option`` the plugin knows, by the stage that reads it; other stages ignore it, so
#: one ``-o mode=throughput`` works for ``dk run bench`` (export + load) without rebuilding.
OPTIONS = {
    "export": {},
    "quantize": {
        "preset": "NNCF preset performance (default: symmetric activations) or mixed",
        "subset_size": "calibration batches NNCF uses (default: all of them)",
        "fast_bias_correction": "1 (default) or 0 for NNCF's slower, sometimes more accurate bias correction",
        "exclude_nodes": "comma-separated ONNX node names kept in float (NNCF ignored scope; see dk debug layers)",
    },
    "load": {
        "mode": "latency (default: one synchronous request) or throughput (a pool of the optimal number of requests)",
        "infer_precision": "f32 (default: fp32 math), bf16 or f16 (INFERENCE_PRECISION_HINT)",
        "threads": "CPU threads (INFERENCE_NUM_THREADS, default: all cores)",
        "streams": "parallel streams (NUM_STREAMS, default: chosen by the performance hint)",
        "nireq": "requests in the throughput queue (default: OPTIMAL_NUMBER_OF_INFER_REQUESTS)",
    },
}

_core: Any = None
#: Engines not yet closed, closed by :func:`release` at exit at the latest.
_open_engines: "weakref.WeakSet[Any]" = weakref.WeakSet()


def openvino_version() -> str | None:
    """The installed openvino distribution's version, from package metadata (no import)."""
    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return None


def nncf_version() -> str | None:
    try:
        return importlib.metadata.version("nncf")
    except importlib.metadata.PackageNotFoundError:
        return None


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def require_openvino() -> Any:
    """Import openvino or raise :class:`MissingDependency` saying what to install."""
    try:
        import openvino
    except ImportError:
        raise MissingDependency("the openvino plugin needs OpenVINO: pip install openvino") from None
    return openvino


def core() -> Any:
    """The process-wide ``openvino.Core`` (creating one costs a few ms and loads device plugins lazily).

    :func:`release` drops it at exit, before the interpreter tears itself down (docs/openvino.md, "Exit").
    """
    global _core
    if _core is None:
        _core = require_openvino().Core()
        atexit.register(release)
    return _core


def track(engine: Any) -> None:
    """Remember an open engine, so that :func:`release` closes it if its user did not."""
    _open_engines.add(engine)


def release() -> None:
    """Close every open engine (its requests and compiled model), then drop the Core, so that the
    CPU plugin and its stream threads are torn down now, while the interpreter is whole, and not
    in its last GC pass during finalization. Runs at exit; safe to call again."""
    global _core
    for engine in list(_open_engines):
        engine.close()
    _core = None


def tool_versions() -> dict[str, str]:
    """Versions that enter an artifact's cache key and manifest."""
    return {"openvino": require_openvino().get_version()}


def available_devices() -> list[str]:
    return list(core().available_devices)


def device_name(device: str) -> str:
    """OpenVINO's name for ``device`` (``cpu`` -> ``CPU``, ``gpu.1`` -> ``GPU.1``, ``AUTO:GPU,CPU``), or
    :class:`DeviceError` listing this machine's devices when it is unknown or absent here."""
    name = device.strip().upper()
    kind, sep, targets = name.partition(":")
    if kind in META_DEVICES:
        wanted: list[str] | None = [t.strip() for t in targets.split(",") if t.strip()]
    else:
        wanted = None if sep else [name]  # 'cuda:0' and the like are no OpenVINO names
    available = available_devices()
    bases = {d.split(".")[0] for d in available}
    if wanted is None or any(w not in available and w not in bases for w in wanted):
        raise DeviceError(
            f"device {device!r} is not available to OpenVINO here; this machine has {', '.join(available) or 'none'}"
            f" (OpenVINO devices: {', '.join(DEVICES)}, AUTO:GPU,CPU; a GPU or NPU needs Intel's drivers)"
        )
    return name


def check_options(options: Mapping[str, str], stage: str) -> dict[str, str]:
    """Refuse unknown option keys (naming the valid ones); return this stage's options."""
    from dk.plugin_options import SOURCE_OPTIONS  # read while a torch source becomes ONNX

    known = {k: v for table in OPTIONS.values() for k, v in table.items()}
    unknown = sorted(set(options) - set(known) - set(SOURCE_OPTIONS))
    if unknown:
        valid = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise DkError(f"unknown openvino option(s) {', '.join(unknown)}; valid options are {valid}")
    return {k: v for k, v in sorted(options.items()) if k in OPTIONS[stage]}


def parse_int(options: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise DkError(f"option {key}={raw} must be an integer >= {minimum}")
    return value


def parse_choice(options: Mapping[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = options.get(key, default).strip().lower()
    if value not in choices:
        raise DkError(f"option {key}={options.get(key)} is not one of {', '.join(choices)}")
    return value


def one_line(exc: BaseException) -> str:
    """OpenVINO's multi-line 'Exception from src/...' text reduced to its message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '"))] or lines
    return " ".join(useful)[:400] or type(exc).__name__
