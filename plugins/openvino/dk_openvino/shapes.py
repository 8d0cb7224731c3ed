"""``--shapes``, ``--static`` and ``--min-shapes``/``--max-shapes`` applied to an ``openvino.Model``.

Same rules as :func:`dk.onnx_io.set_input_shapes`: given shapes fix every axis except a dynamic
batch axis, which stays dynamic unless ``--static``; min/max shapes become OpenVINO's bounded
dimensions (``1..8``), which the compiled model and the engine's input check then enforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dk.errors import ModelError

from dk_openvino.runtime import one_line, require_openvino

Shapes = Mapping[str, tuple[int, ...]]


def apply_shapes(model: Any, shapes: Shapes, min_shapes: Shapes, max_shapes: Shapes, dynamic_batch: bool,
                 dynamic_hw: bool = False) -> Any:
    """Reshape ``model`` in place as the request says (nothing to do: returned unchanged); with
    ``dynamic_hw`` a dynamic height and width of a rank-4 input stay dynamic (``--dynamic-hw``)."""
    if not (shapes or min_shapes or max_shapes or not dynamic_batch):
        return model
    ov = require_openvino()
    inputs = {port.get_any_name(): port.get_partial_shape() for port in model.inputs}
    for flag, table in (("--shapes", shapes), ("--min-shapes", min_shapes), ("--max-shapes", max_shapes)):
        for name, shape in table.items():
            if name not in inputs:
                raise ModelError(f"{flag} names input {name!r}, but the model's inputs are {sorted(inputs)}")
            if len(shape) != len(inputs[name]):
                raise ModelError(
                    f"{flag} gives {name!r} rank {len(shape)}, but the model's input has rank {len(inputs[name])} "
                    f"({inputs[name]})"
                )
    new_shapes = {}
    for name, current in inputs.items():
        dims = []
        for axis, dim in enumerate(current):
            lo = min_shapes[name][axis] if name in min_shapes else None
            hi = max_shapes[name][axis] if name in max_shapes else None
            keep_hw = dynamic_hw and axis in (2, 3) and len(current) == 4
            fixed = None if keep_hw and dim.is_dynamic else _fixed_size(name, axis, dim, shapes.get(name), dynamic_batch)
            if fixed is not None:
                if (lo is not None and lo != fixed) or (hi is not None and hi != fixed):
                    raise ModelError(
                        f"--min-shapes/--max-shapes give {name!r} axis {axis} the range {lo}..{hi}, but it is fixed "
                        f"to {fixed}"
                    )
                dims.append(ov.Dimension(fixed))
            elif lo is not None and hi is not None and lo > hi:
                raise ModelError(f"--min-shapes {lo} exceeds --max-shapes {hi} for input {name!r} axis {axis}")
            else:
                dims.append(ov.Dimension(lo if lo is not None else 0, hi if hi is not None else -1))
        new_shapes[name] = ov.PartialShape(dims)
    try:
        model.reshape(new_shapes)
    except RuntimeError as exc:
        raise ModelError(f"OpenVINO cannot reshape the model's inputs to {_show(new_shapes)}: {one_line(exc)}") from None
    return model


def _fixed_size(name: str, axis: int, dim: Any, given: tuple[int, ...] | None, dynamic_batch: bool) -> int | None:
    """The size axis ``axis`` gets, or ``None`` when it stays dynamic."""
    if dim.is_static:
        if given is not None and given[axis] != dim.get_length():
            raise ModelError(f"--shapes sets {name!r} axis {axis} to {given[axis]}, but the model fixes it to {dim.get_length()}")
        return dim.get_length()
    if axis == 0:
        if dynamic_batch:
            return None  # --shapes gives the example size; the batch stays dynamic unless --static
        return given[0] if given is not None else 1
    return given[axis] if given is not None else None


def _show(shapes: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in shapes.items())
