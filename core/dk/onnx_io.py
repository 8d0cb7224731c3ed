"""Reading ONNX files safely: clear errors for missing, non-ONNX, truncated or unsafe files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dk.errors import ModelError
from dk.specs import TensorSpec

if TYPE_CHECKING:
    import onnx


def load_onnx(path: str | os.PathLike, *, load_external_data: bool = True) -> "onnx.ModelProto":
    """Load and check an ONNX model, or raise :class:`ModelError` naming the problem.

    External data files must lie inside the model's folder: a model whose tensors point elsewhere
    (``../../etc/passwd``, an absolute path) is refused before anything is read.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} is not a valid ONNX file (truncated or another format): {exc}") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path} is not a valid ONNX file: it has no graph (truncated or another format)")
    check_external_data_paths(model, path.parent)
    if load_external_data:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except OSError as exc:
            raise ModelError(f"{path}: cannot read its external data ({exc})") from None
    try:
        # the file, not the loaded model: given a ModelProto the checker first serialises it in
        # Python (0.03 s per 45 MB ResNet-18 here), given a path its C++ reads the file itself
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid graph"
        raise ModelError(f"{path} is not a valid ONNX model (truncated or corrupt?): {first}") from None
    return model


def check_external_data_paths(model: "onnx.ModelProto", base_dir: Path) -> None:
    """Refuse external data that resolves outside ``base_dir`` (path traversal) or whose file is
    missing (onnx's own loader and checker would raise a raw ``ValidationError``)."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    base = base_dir.resolve()
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if os.path.isabs(location) or not target.is_relative_to(base):
            raise ModelError(
                f"ONNX external data {location!r} of tensor {tensor.name!r} points outside the model's "
                f"folder {base_dir}; refusing to read it"
            )
        if not target.is_file():
            raise ModelError(
                f"the model's external data file {base_dir / location} is missing (tensor {tensor.name!r} is "
                "stored there); put it beside the model, as it was saved"
            )


def _dims(type_proto) -> tuple[int | str, ...]:
    dims: list[int | str] = []
    for i, d in enumerate(type_proto.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"dim{i}")
    return tuple(dims)


def _dtype(type_proto) -> str:
    from onnx.helper import tensor_dtype_to_np_dtype

    return tensor_dtype_to_np_dtype(type_proto.tensor_type.elem_type).name


def io_specs(model: "onnx.ModelProto") -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input and output specs of an ONNX graph (initializers are not inputs)."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [
        TensorSpec(v.name, _dims(v.type), _dtype(v.type)) for v in model.graph.input if v.name not in initializers
    ]
    outputs = [TensorSpec(v.name, _dims(v.type), _dtype(v.type)) for v in model.graph.output]
    return inputs, outputs


def set_input_shapes(
    model: "onnx.ModelProto", shapes: dict[str, tuple[int, ...]], dynamic_batch: bool, dynamic_hw: bool = False
) -> "onnx.ModelProto":
    """Fix the model's input dims in place: ``shapes`` gives shapes by input name, and a dynamic
    batch axis stays dynamic when ``dynamic_batch`` (it takes the given size, or 1, otherwise); with
    ``dynamic_hw`` the dynamic height and width of a rank-4 input stay dynamic too (``--dynamic-hw``).
    Output shapes are re-inferred. Raises :class:`ModelError` for a name or rank that does not match."""
    import onnx

    inputs, _ = io_specs(model)
    known = {s.name: s for s in inputs}
    for name in shapes:
        if name not in known:
            raise ModelError(f"--shapes names input {name!r}, but the model's inputs are {sorted(known)}")
    by_name = {v.name: v for v in model.graph.input}
    fixed: dict[str, int] = {}  # dynamic input dims given a size: param name -> size
    for spec in inputs:
        dims = by_name[spec.name].type.tensor_type.shape.dim
        if spec.name in shapes:
            shape = shapes[spec.name]
            if len(shape) != len(spec.shape):
                raise ModelError(
                    f"--shapes gives {spec.name!r} rank {len(shape)}, but the model's input has rank "
                    f"{len(spec.shape)} ({list(spec.shape)})"
                )
            for axis, (dim, want, have) in enumerate(zip(dims, shape, spec.shape)):
                if axis == 0 and dynamic_batch and isinstance(have, str):
                    continue  # --shapes gives the example size; the batch stays dynamic unless --static
                if axis in (2, 3) and dynamic_hw and len(shape) == 4 and isinstance(have, str):
                    continue  # --dynamic-hw: the example size does not fix height and width
                if isinstance(have, int) and have != want:
                    raise ModelError(
                        f"--shapes sets {spec.name!r} axis {axis} to {want}, but the model fixes it to {have}"
                    )
                if isinstance(have, str):
                    fixed[have] = int(want)
                dim.Clear()
                dim.dim_value = int(want)
        elif not dynamic_batch and spec.shape and isinstance(spec.shape[0], str):
            fixed[spec.shape[0]] = 1
            dims[0].Clear()
            dims[0].dim_value = 1
    if shapes or not dynamic_batch:
        declared = {out.name: onnx.TensorShapeProto.FromString(out.type.tensor_type.shape.SerializeToString())
                    for out in model.graph.output if out.type.tensor_type.HasField("shape")}
        for out in model.graph.output:
            out.type.tensor_type.ClearField("shape")
        del model.graph.value_info[:]
        model = onnx.shape_inference.infer_shapes(model)
        _restore_uninferred_output_shapes(model, declared, fixed)
    return model


def _restore_uninferred_output_shapes(model: "onnx.ModelProto", declared: dict[str, Any], fixed: dict[str, int]) -> None:
    """Give back its declared shape (with the input dims just fixed, such as ``batch``, set) to each
    output that shape inference left without one: onnx cannot infer through ops of other domains
    (ort's fused ``com.microsoft`` ops of ``-o level=all``), and an output type without a shape is
    an invalid model."""
    for out in model.graph.output:
        tensor = out.type.tensor_type
        if tensor.HasField("shape") or out.name not in declared:
            continue
        tensor.shape.CopyFrom(declared[out.name])
        for dim in tensor.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in fixed:
                size = fixed[dim.dim_param]
                dim.Clear()
                dim.dim_value = size
