"""Which TensorRT is installed, which precision path that version takes, and whether engines can be
built and run here (TensorRT, a CUDA binding, an NVIDIA GPU).

TensorRT 11 builds strongly typed networks only: fp16 comes from an fp16-typed ONNX and int8 from
Q/DQ nodes. TensorRT 10.x still has the FP16/INT8 builder flags and the implicit-quantization
calibrators. :func:`precision_path` is pure so that the choice is tested without TensorRT.

Sources of the version facts: the Python bindings of each release (``tensorrt-cu12-bindings`` wheels
10.0.1, 10.13.3.9, 10.16.1.11, 11.0.0.114, 11.4.0.106; name lists in tests/plugins/trt/data, made by
scripts/trt_api_surface.py) and NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` at release/10.0
ccf119972b50299ba00d35d39f3938296e187f4e, release/10.16 d0faf303ba766f20cd9fd8c413a112fc2e5a397b and
main a892d22267d9cd2dedc1a0893e6892ac901f6d3d (11.1).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import attrs

from dk.errors import MissingDependency

#: Distributions that provide the ``tensorrt`` import package (pip); JetPack installs it from apt.
TRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu12-bindings",
                     "tensorrt-cu13-bindings")
MIN_VERSION = (10, 0)
INSTALL_HINT = (
    "pip install tensorrt cuda-bindings (TensorRT wheels come from NVIDIA's index and need a CUDA GPU; on "
    "Jetson TensorRT comes with JetPack)"
)

#: Names TensorRT 10.x has and 11.x removed (absent from the 11.0.0.114 and 11.4.0.106 bindings,
#: present in every 10.x list; tests/plugins/trt/test_trt_api_surface.py checks both).
REMOVED_IN_11 = (
    "IInt8EntropyCalibrator2", "IInt8Calibrator", "CalibrationAlgoType", "EXPLICIT_BATCH", "int8_calibrator",
    "set_calibration_profile", "platform_has_fast_fp16",
    # the calibrator methods TensorRT 10.x calls on an IInt8EntropyCalibrator2 subclass
    "get_batch", "get_batch_size", "read_calibration_cache", "write_calibration_cache",
)
#: What torch2trt (master 4e820ae31b4e35d59685935223b05b2e11d47b03) touches of REMOVED_IN_11 on every
#: conversion: dataset_calibrator.py subclasses trt.IInt8Calibrator and reads trt.CalibrationAlgoType
#: at import, torch2trt.py creates networks with NetworkDefinitionCreationFlag.EXPLICIT_BATCH.
TORCH2TRT_NEEDS = ("IInt8Calibrator", "CalibrationAlgoType", "EXPLICIT_BATCH")

#: DLA support by TensorRT version, first match wins: (first version, last version, DLA?).
#: 10.x: DLA on Jetson Xavier/Orin (JetPack 6). 11.x: NVIDIA's TensorRT 11 support matrix lists DLA
#: for Jetson AGX Orin from 11.4.1 on (as cited in dk issue 14; unverified here, see docs/tensorrt.md).
DLA_BY_VERSION = (
    ((10, 0, 0), (10, 999, 999), True),
    ((11, 0, 0), (11, 4, 0), False),
    ((11, 4, 1), (11, 999, 999), True),
)


@attrs.frozen
class PrecisionPath:
    """How one TensorRT version builds each precision.

    :ivar strongly_typed: Build a strongly typed network (the ONNX types decide the precision).
    :ivar fp16: ``builder-flag`` (set BuilderFlag.FP16 on the fp32 ONNX) or ``fp16-onnx`` (dk
        converts the ONNX to fp16 types, keeping sensitive ops in fp32).
    :ivar int8: ``qdq`` only, or ``qdq+calibrator`` where implicit quantization still exists.
    :ivar dla: Whether this version can target a Jetson DLA.
    """

    version: str
    major: int
    strongly_typed: bool
    fp16: str
    int8: str
    dla: bool

    @property
    def has_calibrator(self) -> bool:
        return self.int8 == "qdq+calibrator"

    def describe(self) -> str:
        how = "strongly typed, fp16 from an fp16-typed ONNX" if self.strongly_typed else "fp16 by builder flag"
        int8 = "int8 from Q/DQ ONNX only" if not self.has_calibrator else "int8 from Q/DQ ONNX or entropy calibrator"
        return f"TensorRT {self.version}: {how}, {int8}"


def parse_version(text: str) -> tuple[int, int]:
    """``"10.3.0.26"`` -> (10, 3); raises ValueError for text that is not a version."""
    return parse_release(text)[:2]


def parse_release(text: str) -> tuple[int, int, int]:
    """``"11.4.1.2"`` -> (11, 4, 1), ``"10.3"`` -> (10, 3, 0); ValueError for text that is not a version."""
    match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        raise ValueError(f"not a TensorRT version: {text!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def dla_supported(version: str) -> bool:
    """Whether TensorRT ``version`` can build DLA engines, by :data:`DLA_BY_VERSION`."""
    release = parse_release(version)
    return any(lo <= release <= hi and ok for lo, hi, ok in DLA_BY_VERSION)


def precision_path(version: str) -> PrecisionPath:
    """The precision path for TensorRT ``version``, or :class:`MissingDependency` when it is too old."""
    try:
        major, minor = parse_version(version)
    except ValueError:
        raise MissingDependency(f"cannot read the TensorRT version {version!r}; reinstall TensorRT") from None
    if (major, minor) < MIN_VERSION:
        raise MissingDependency(
            f"TensorRT {version} is too old: dk needs {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer (named I/O "
            f"tensors, memory pools); {INSTALL_HINT}"
        )
    if major >= 11:
        return PrecisionPath(version, major, True, "fp16-onnx", "qdq", dla_supported(version))
    return PrecisionPath(version, major, False, "builder-flag", "qdq+calibrator", dla_supported(version))


def torch2trt_incompatibility(version: str | None) -> str | None:
    """Why torch2trt cannot run with TensorRT ``version`` (None: it can, or the version is unknown)."""
    try:
        major = parse_version(version or "")[0]
    except ValueError:
        return None
    if major < 11:
        return None
    return (
        f"torch2trt needs TensorRT 10.x: it uses trt.{', trt.'.join(TORCH2TRT_NEEDS)}, which TensorRT {version} "
        "removed; use 'dk run export --plugin trt' (it builds the same engine through ONNX), or install tensorrt<11"
    )


def trt_distribution() -> tuple[str, str] | None:
    """(distribution, version) of a pip-installed TensorRT, from package metadata only."""
    for dist in TRT_DISTRIBUTIONS:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def trt_importable() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def missing_reason() -> str | None:
    """Why TensorRT engines cannot be built or run here (cheap checks only), or None."""
    from dk_trt.cudart import installed_binding

    missing = [name for name, ok in (("tensorrt", trt_importable()), ("cuda-bindings", installed_binding() is not None))
               if not ok]
    if not missing:
        return None
    return f"needs {' and '.join(missing)}: {INSTALL_HINT}"


#: Files an NVIDIA driver leaves, any one of which means a GPU may answer: the desktop/server driver's
#: /proc entry and device nodes, and Jetson's integrated-GPU nodes (L4T).
DRIVER_FILES = ("proc/driver/nvidia/version", "dev/nvidia0", "dev/nvhost-ctrl-gpu", "dev/nvgpu/igpu0/ctrl")


def no_gpu_reason(root: str | Path = "/") -> str | None:
    """Why no NVIDIA GPU can answer here, from files only (cheap enough for plain ``dk doctor``), or None."""
    root = Path(root)
    if any((root / f).exists() for f in DRIVER_FILES):
        return None
    return (f"no NVIDIA GPU driver here (none of {', '.join('/' + f for f in DRIVER_FILES)}): TensorRT builds and "
            "runs engines on an NVIDIA GPU only")


def require_tensorrt():
    """Import tensorrt, or raise :class:`MissingDependency` with the install hint."""
    try:
        import tensorrt
    except ImportError as exc:
        raise MissingDependency(f"the trt plugin needs TensorRT ({exc}): {INSTALL_HINT}") from None
    return tensorrt


def installed_version() -> str:
    """The installed TensorRT version: package metadata when pip installed it, else the module's."""
    dist = trt_distribution()
    if dist is not None:
        return dist[1]
    return str(require_tensorrt().__version__)
