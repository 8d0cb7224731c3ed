"""The nodes of an ONNX graph in topological order, and the same graph with tensors marked as outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import attrs

if TYPE_CHECKING:
    import onnx

#: ONNX element types whose tensors are compared (floating point); others (shapes, indices) are skipped.
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@attrs.frozen
class NodeInfo:
    """One candidate node: its name, op type, the tensor compared and its inputs' names and shapes."""

    index: int
    name: str
    op: str
    tensor: str
    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[Any, ...] | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "op": self.op, "tensor": self.tensor,
                "inputs": [{"name": n, "shape": None if s is None else list(s)}
                           for n, s in zip(self.inputs, self.input_shapes)]}


def _shapes(model: "onnx.ModelProto") -> dict[str, tuple[Any, ...]]:
    """Tensor shapes after ONNX shape inference (symbolic dims as strings); empty when inference fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are a courtesy in the report, never a reason to fail
        inferred = model
    shapes: dict[str, tuple[Any, ...]] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            dims = value.type.tensor_type.shape.dim
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _float_tensors(model: "onnx.ModelProto") -> set[str] | None:
    """Names of float tensors known after shape inference, or None when types are unknown."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        return None
    graph = inferred.graph
    return {v.name for v in [*graph.input, *graph.value_info, *graph.output]
            if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in _FLOAT_TYPES}


def candidate_nodes(model: "onnx.ModelProto") -> list[NodeInfo]:
    """The nodes whose first output can be compared, in the graph's (topological) order.

    Constants and nodes whose first output is not a float tensor (Shape, indices) are left out, as are
    nodes that no graph output depends on.
    """
    graph = model.graph
    needed = ancestors_of(model, [o.name for o in graph.output])
    floats = _float_tensors(model)
    shapes = _shapes(model)
    nodes = []
    for node in graph.node:
        if not node.output or node.op_type == "Constant" or not node.output[0]:
            continue
        tensor = node.output[0]
        if tensor not in needed or (floats is not None and tensor not in floats):
            continue
        inputs = tuple(i for i in node.input if i)
        nodes.append(NodeInfo(len(nodes), node.name or tensor, node.op_type, tensor, inputs,
                              tuple(shapes.get(i) for i in inputs)))
    return nodes


def ancestors_of(model: "onnx.ModelProto", tensors: Iterable[str]) -> set[str]:
    """Every tensor the given tensors depend on, themselves included."""
    producer = {out: node for node in model.graph.node for out in node.output}
    seen: set[str] = set()
    stack = list(tensors)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = producer.get(name)
        if node is not None:
            stack.extend(i for i in node.input if i)
    return seen


def mark_outputs(model: "onnx.ModelProto", tensors: Iterable[str]) -> "onnx.ModelProto":
    """A copy of ``model`` whose outputs are its own plus ``tensors`` (untyped: engines infer them)."""
    import onnx

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    present = {o.name for o in marked.graph.output}
    for name in tensors:
        if name not in present:
            marked.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    return _typed_outputs(marked)


def _typed_outputs(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Give untyped graph outputs the type shape inference found (some engines need a type)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        return model
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for output in model.graph.output:
        if not output.type.HasField("tensor_type") and output.name in known:
            output.CopyFrom(known[output.name])
    return model
