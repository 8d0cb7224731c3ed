"""OpenVINO IR files: reading them with clear errors, writing them, and their tensor specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dk.errors import ModelError
from dk.specs import TensorSpec

from dk_openvino.runtime import core, one_line, require_openvino

FORMAT = "openvino-ir"


def bin_path(xml: Path) -> Path:
    return xml.with_suffix(".bin")


def read_ir(xml: Path, bin_size: int | None = None) -> Any:
    """Read ``xml`` and the ``.bin`` beside it as an ``openvino.Model``, or raise :class:`ModelError`.

    :param bin_size: The weights' size recorded at build time; a ``.bin`` of another size is refused
        (OpenVINO itself accepts a longer file).
    """
    weights = bin_path(xml)
    if not xml.is_file():
        raise ModelError(f"IR file {xml} does not exist; re-export the artifact")
    if not weights.is_file():
        raise ModelError(f"IR weights {weights.name} are missing beside {xml.name}; re-export the artifact")
    if bin_size is not None and weights.stat().st_size != bin_size:
        raise ModelError(
            f"IR weights {weights} have {weights.stat().st_size} bytes, expected {bin_size}: the .bin does not "
            "belong to this .xml or is truncated; re-export the artifact with --force"
        )
    try:
        return core().read_model(str(xml), str(weights))
    except RuntimeError as exc:
        raise ModelError(f"OpenVINO cannot read the IR {xml.name} (corrupt .xml or .bin?): {one_line(exc)}") from None


def save_ir(model: Any, folder: Path, name: str, compress_to_fp16: bool) -> list[str]:
    """Write ``name.xml`` + ``name.bin`` into ``folder``; return the two file names."""
    ov = require_openvino()
    xml = folder / f"{name}.xml"
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    return [xml.name, bin_path(xml).name]


def convert_onnx(path: Path) -> Any:
    """An ONNX file as an ``openvino.Model``, or :class:`ModelError`.

    Read by the runtime's ONNX frontend rather than ``openvino.convert_model``: the same graph,
    without the converter's usage telemetry (which forks a sender process from a thread per call).
    """
    try:
        return core().read_model(str(path))
    except RuntimeError as exc:
        raise ModelError(f"OpenVINO cannot read the ONNX model {path.name}: {one_line(exc)}") from None


def port_specs(ports: Sequence[Any]) -> list[TensorSpec]:
    """TensorSpecs of a model's inputs or outputs; a dynamic dim is symbolic, bounded ones give
    ``min_shape``/``max_shape`` so that the engine's input check enforces them."""
    specs = []
    for port in ports:
        dims: list[int | str] = []
        lo: list[int] = []
        hi: list[int] = []
        bounded = False
        for axis, dim in enumerate(port.get_partial_shape()):
            if dim.is_static:
                dims.append(dim.get_length())
                lo.append(dim.get_length())
                hi.append(dim.get_length())
                continue
            dims.append("batch" if axis == 0 else f"dim{axis}")
            low, high = dim.get_min_length(), dim.get_max_length()
            bounded = bounded or low > 1 or high >= 0
            lo.append(max(low, 1))
            hi.append(high if high >= 0 else 2**31 - 1)
        specs.append(
            TensorSpec(
                port.get_any_name(),
                tuple(dims),
                port.get_element_type().to_dtype().name,
                min_shape=tuple(lo) if bounded else None,
                max_shape=tuple(hi) if bounded else None,
            )
        )
    return specs
