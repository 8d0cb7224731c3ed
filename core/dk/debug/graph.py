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
    """One candidate node: its name, op type, the tensor compared and its inputs' names and shapes.

    ``clamp``: (low, high), either None for unbounded, when the tensor reaches the rest of the graph
    only through one Relu or Clip. Its values outside that range change nothing downstream, and an
    int8 quantizer folds such an activation into the tensor's quantization range (ONNX Runtime's
    QDQ Conv+Relu), so the int8 engine's tensor is already clamped: both sides are clamped before
    they are compared, or every Conv before a Relu would look broken in int8.
    """

    index: int
    name: str
    op: str
    tensor: str
    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[Any, ...] | None, ...]
    clamp: tuple[float | None, float | None] | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {"index": self.index, "name": self.name, "op": self.op, "tensor": self.tensor,
               "inputs": [{"name": n, "shape": None if s is None else list(s)}
                          for n, s in zip(self.inputs, self.input_shapes)]}
        if self.clamp is not None:
            doc["compared_clamped_to"] = list(self.clamp)
        return doc


def value_infos(model: "onnx.ModelProto") -> dict[str, Any]:
    """Every typed tensor of the graph after ONNX shape inference (run once: it copies the model);
    only the graph's own inputs and outputs when inference fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - types and shapes are a courtesy, never a reason to fail
        inferred = model
    graph = inferred.graph
    infos = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type"):
            infos[value.name] = onnx.ValueInfoProto()
            infos[value.name].CopyFrom(value)  # copies: the inferred model (and its weights) can go
    return infos


def _shapes(model: "onnx.ModelProto", infos: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Tensor shapes (symbolic dims as strings)."""
    shapes: dict[str, tuple[Any, ...]] = {}
    graph = model.graph
    for value in infos.values():
        if value.type.tensor_type.HasField("shape"):
            dims = value.type.tensor_type.shape.dim
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def candidate_nodes(model: "onnx.ModelProto", infos: dict[str, Any] | None = None) -> list[NodeInfo]:
    """The nodes whose first output can be compared, in the graph's (topological) order.

    Constants and nodes whose first output is not a float tensor (Shape, indices) are left out, as are
    nodes that no graph output depends on.
    """
    graph = model.graph
    needed = ancestors_of(model, [o.name for o in graph.output])
    infos = value_infos(model) if infos is None else infos
    typed = len(infos) > len(graph.input) + len(graph.output)
    floats = {k for k, v in infos.items() if v.type.tensor_type.elem_type in _FLOAT_TYPES} if typed else None
    shapes = _shapes(model, infos)
    clamps = _clamps(model)
    nodes = []
    for node in graph.node:
        if not node.output or node.op_type == "Constant" or not node.output[0]:
            continue
        tensor = node.output[0]
        if tensor not in needed or (floats is not None and tensor not in floats):
            continue
        inputs = tuple(i for i in node.input if i)
        nodes.append(NodeInfo(len(nodes), node.name or tensor, node.op_type, tensor, inputs,
                              tuple(shapes.get(i) for i in inputs), clamps.get(tensor)))
    return nodes


def _clamps(model: "onnx.ModelProto") -> dict[str, tuple[float | None, float | None]]:
    """Tensors whose only use is one Relu or Clip (with constant bounds) -> that activation's range
    (see :class:`NodeInfo`); graph outputs are used as they are."""
    graph = model.graph
    uses: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                uses.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    constants = {i.name: i for i in graph.initializer}
    constants.update({n.output[0]: n.attribute[0].t for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    clamps: dict[str, tuple[float | None, float | None]] = {}
    for tensor, users in uses.items():
        if len(users) != 1 or tensor in outputs or users[0].input[0] != tensor:
            continue
        user = users[0]
        if user.op_type == "Relu":
            clamps[tensor] = (0.0, None)
        elif user.op_type == "Clip":
            bounds = _clip_bounds(user, constants)
            if bounds is not None:
                clamps[tensor] = bounds
    return clamps


def _clip_bounds(clip: Any, constants: dict[str, Any]) -> tuple[float | None, float | None] | None:
    """A Clip's (min, max), None for an absent bound; None when a bound is not one of ``constants``
    (initializers and Constant outputs, by name)."""
    import onnx
    from onnx import numpy_helper

    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in clip.attribute}
    if "min" in attributes or "max" in attributes:  # opset < 11
        return attributes.get("min"), attributes.get("max")
    bounds: list[float | None] = []
    for name in (list(clip.input[1:3]) + ["", ""])[:2]:
        if not name:
            bounds.append(None)
        elif name in constants:
            try:
                value = numpy_helper.to_array(constants[name])
            except Exception:  # noqa: BLE001 - data left outside the file (external, cleared): not known here
                return None
            if value.size != 1:
                return None
            bounds.append(float(value.reshape(())))
        else:
            return None
    return bounds[0], bounds[1]


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


def candidate_inputs(model: "onnx.ModelProto", nodes: Iterable[NodeInfo],
                     infos: dict[str, Any] | None = None) -> dict[str, tuple[str, ...]]:
    """For each candidate node's tensor, the candidate tensors it is computed from directly: its
    nearest candidate ancestors, reached through the nodes in between that are not candidates.

    Only float tensors carry a divergence (a Shape of a diverging tensor is the same shape), so a
    path through an integer tensor is no dependency here; with no types known, every path is one.
    """
    graph = model.graph
    infos = value_infos(model) if infos is None else infos
    typed = len(infos) > len(graph.input) + len(graph.output)

    def carries(tensor: str) -> bool:
        return not typed or tensor not in infos or infos[tensor].type.tensor_type.elem_type in _FLOAT_TYPES

    producer = {out: node for node in graph.node for out in node.output if out}
    candidate_of = {n.tensor: n.tensor for n in nodes}
    for node in graph.node:  # a candidate's other outputs (Split) lead back to it too
        if node.output and node.output[0] in candidate_of:
            candidate_of.update({out: node.output[0] for out in node.output if out})
    memo: dict[str, frozenset[str]] = {}

    def sources(tensor: str) -> frozenset[str]:
        """The candidate tensors nearest upstream of ``tensor`` (itself when it is a candidate's)."""
        if tensor in candidate_of:
            return frozenset([candidate_of[tensor]])
        if tensor not in memo:
            memo[tensor] = frozenset()  # a cycle (malformed graph) ends here
            node = producer.get(tensor)
            found: set[str] = set()
            if node is not None:
                for name in node.input:
                    if name and carries(name):
                        found |= sources(name)
            memo[tensor] = frozenset(found)
        return memo[tensor]

    result = {}
    for info in nodes:
        node = producer[info.tensor]
        found: set[str] = set()
        for name in node.input:
            if name and carries(name):
                found |= sources(name)
        found.discard(info.tensor)
        result[info.tensor] = tuple(sorted(found))
    return result


def load_graph(path) -> "onnx.ModelProto":
    """The model at ``path`` for its topology and types only: large initializers lose their data (their
    dims and types stay), so a big model costs little memory while it is bisected."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for init in model.graph.initializer:
        if init.ByteSize() > 4096:
            for field in ("raw_data", "float_data", "double_data", "int32_data", "int64_data"):
                init.ClearField(field)
    return model


def uses_external_data(model: "onnx.ModelProto") -> bool:
    import onnx

    return any(i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer)


def save_marked(source, tensors: Iterable[str], target, infos: dict[str, Any], outputs: Iterable[str],
                external: bool = False) -> None:
    """Write the ONNX file ``source`` with ``tensors`` added to its graph outputs (typed from ``infos``
    where known) to ``target``, without loading its weights: protobuf merges concatenated messages,
    appending repeated fields, so the file's bytes followed by a message holding only the new outputs
    parse as the model with those outputs added. Models with external data are loaded and written
    whole (``external``; weights inline), as the copy lives outside their folder."""
    import shutil

    import onnx

    present = set(outputs)
    delta = onnx.ModelProto()
    for name in tensors:
        if name not in present:
            value = delta.graph.output.add()
            if name in infos:
                value.CopyFrom(infos[name])
            value.name = name
            present.add(name)
    if external:
        model = onnx.load(str(source))
        model.graph.output.extend(delta.graph.output)
        onnx.save(model, str(target))
        return
    shutil.copyfile(source, target)
    with open(target, "ab") as file:
        file.write(delta.SerializeToString())
