"""Which TensorRT is installed, and which precision path that version takes.

TensorRT 11 builds strongly typed networks only: fp16 comes from an fp16-typed ONNX and int8 from
Q/DQ nodes. TensorRT 10.x still has the FP16/INT8 builder flags and the implicit-quantization
calibrators. :func:`precision_path` is pure so that the choice is tested without TensorRT.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re

import attrs

from dk.errors import MissingDependency

#: Distributions that provide the ``tensorrt`` import package (pip); JetPack installs it from apt.
TRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu12-bindings",
                     "tensorrt-cu13-bindings")
MIN_VERSION = (10, 0)
INSTALL_HINT = (
    "pip install tensorrt pycuda (TensorRT wheels come from NVIDIA's index and need a CUDA GPU; on Jetson "
    "they come with JetPack)"
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
    match = re.match(r"^\s*(\d+)\.(\d+)", text or "")
    if not match:
        raise ValueError(f"not a TensorRT version: {text!r}")
    return int(match.group(1)), int(match.group(2))


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
        return PrecisionPath(version, major, True, "fp16-onnx", "qdq", False)
    return PrecisionPath(version, major, False, "builder-flag", "qdq+calibrator", True)


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


def pycuda_importable() -> bool:
    return importlib.util.find_spec("pycuda") is not None


def missing_reason() -> str | None:
    """Why TensorRT engines cannot be built or run here (cheap checks only), or None."""
    missing = [name for name, ok in (("tensorrt", trt_importable()), ("pycuda", pycuda_importable())) if not ok]
    if not missing:
        return None
    return f"needs {' and '.join(missing)}: {INSTALL_HINT}"


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
