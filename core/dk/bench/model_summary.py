"""Parameters, MACs/FLOPs and activation memory of an ONNX graph, from ONNX shape inference.

Computed on the graph rather than in an engine, so every engine's result carries the same summary.
MACs count Conv, ConvTranspose, Gemm and MatMul (and their integer/QLinear forms); FLOPs = 2 x MACs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import attrs

_CONV = {"Conv", "ConvInteger", "QLinearConv"}
_MATMUL = {"MatMul", "MatMulInteger", "QLinearMatMul"}


@attrs.define
class ModelSummary:
    """What the graph costs per sample (batch 1 unless ``batch`` says otherwise)."""

    params: int
    param_bytes: int
    macs: int
    flops: int
    activation_bytes: int
    largest_activation_bytes: int
    nodes: int
    batch: int
    input_shapes: dict[str, list[int]]
    ops: dict[str, int]
    macs_by_op: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def summarize_onnx(path: str | Path, shapes: Mapping[str, tuple[int, ...]] | None = None, batch: int = 1) -> ModelSummary:
    """Summary of the ONNX file at ``path`` with inputs at ``shapes`` (default: dynamic batch = ``batch``,
    other dynamic dims 1)."""
    import onnx

    from dk.onnx_io import io_specs, load_onnx, set_input_shapes

    model = load_onnx(path, load_external_data=True)
    inputs, _ = io_specs(model)
    concrete = {s.name: tuple((shapes or {}).get(s.name) or s.concrete_shape(batch)) for s in inputs}
    model = set_input_shapes(model, concrete, dynamic_batch=False)
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return _summarize(model, concrete, batch)


def _summarize(model: Any, concrete: Mapping[str, tuple[int, ...]], batch: int) -> ModelSummary:
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    shapes: dict[str, tuple[int, ...] | None] = {}
    itemsize: dict[str, int] = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        ttype = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim)
        shapes[value.name] = None if any(d < 0 for d in dims) or not ttype.HasField("shape") else dims
        itemsize[value.name] = _itemsize(helper, np, ttype.elem_type)
    params = param_bytes = 0
    initializers = set()
    for init in graph.initializer:
        initializers.add(init.name)
        shapes[init.name] = tuple(init.dims)
        count = math.prod(init.dims)
        params += count
        param_bytes += count * _itemsize(helper, np, init.data_type)
    for node in graph.node:  # weights stored as Constant nodes count as parameters too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.dims:
                    array = numpy_helper.to_array(attr.t)
                    params += array.size
                    param_bytes += array.nbytes
    ops: dict[str, int] = {}
    macs_by_op: dict[str, int] = {}
    for node in graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
        macs = _node_macs(node, shapes)
        if macs:
            macs_by_op[node.op_type] = macs_by_op.get(node.op_type, 0) + macs
    graph_inputs = {v.name for v in graph.input}
    activations = [
        math.prod(shape) * itemsize.get(name, 4)
        for name, shape in shapes.items()
        if shape is not None and name not in initializers and name not in graph_inputs
    ]
    total_macs = sum(macs_by_op.values())
    return ModelSummary(
        params=int(params),
        param_bytes=int(param_bytes),
        macs=int(total_macs),
        flops=int(2 * total_macs),
        activation_bytes=int(sum(activations)),
        largest_activation_bytes=int(max(activations, default=0)),
        nodes=len(graph.node),
        batch=batch,
        input_shapes={k: list(v) for k, v in concrete.items()},
        ops=dict(sorted(ops.items())),
        macs_by_op=dict(sorted(macs_by_op.items())),
    )


def _itemsize(helper: Any, np: Any, elem_type: int) -> int:
    try:
        return int(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except Exception:  # undefined or exotic types
        return 4


def _node_macs(node: Any, shapes: Mapping[str, tuple[int, ...] | None]) -> int:
    """Multiply-accumulates of one node, 0 when it is not a counted op or a shape is unknown."""
    op = node.op_type
    if op in _CONV or op == "ConvTranspose":
        w_index = 3 if op == "QLinearConv" else 1
        if len(node.input) <= w_index:
            return 0
        weight = shapes.get(node.input[w_index])
        if op == "ConvTranspose":
            x = shapes.get(node.input[0])
            if not weight or not x:
                return 0
            return math.prod(x) * weight[1] * math.prod(weight[2:])  # weight [Cin, Cout/group, k...]
        out = shapes.get(node.output[0])
        if not weight or not out:
            return 0
        return math.prod(out) * math.prod(weight[1:])
    if op in _MATMUL or op == "Gemm":
        a = shapes.get(node.input[0])
        out = shapes.get(node.output[0])
        if not a or not out:
            return 0
        k = a[-1]
        if op == "Gemm" and any(attr.name == "transA" and attr.i for attr in node.attribute):
            k = a[0]
        return math.prod(out) * k
    return 0
