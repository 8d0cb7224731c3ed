"""fp32 ONNX -> fp16-typed ONNX for strongly typed TensorRT 11 builds (pure ONNX, no TensorRT).

Only ops that are safe in half precision (convolutions, matmuls, activations, pooling, shape
ops) are converted; normalisations, softmax, reductions and exp/log/pow/div stay fp32, with Cast
nodes at the boundaries. Graph inputs and outputs stay fp32, so callers feed and get float32.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Ops computed in fp16. Anything else stays fp32.
FP16_OPS = frozenset({
    "Conv", "ConvTranspose", "MatMul", "Gemm", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Elu", "Add", "Sub", "Mul", "Max", "Min", "Abs", "Neg", "Clip", "MaxPool",
    "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Concat",
    "Squeeze", "Unsqueeze", "Slice", "Split", "Pad", "Identity", "Gather", "Resize", "Upsample", "Dropout",
    "Expand", "Tile", "DepthToSpace", "SpaceToDepth",
})
#: Numerically sensitive ops that are kept fp32 on purpose (listed for docs and reports).
KEEP_FP32_OPS = frozenset({
    "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Div", "Erf", "Softplus", "CumSum",
})
#: Inputs that are float but must stay float32 whatever the data type (Resize's roi and scales).
_FLOAT32_SLOTS = {"Resize": {1, 2}, "Upsample": {1}}


@attrs.frozen
class Fp16Report:
    fp16_nodes: int
    fp32_nodes: int
    casts: int
    kept_fp32: tuple[str, ...]


def convert_to_fp16(model: Any, keep: frozenset[str] = frozenset()) -> tuple[Any, Fp16Report]:
    """A copy of ``model`` with :data:`FP16_OPS` (minus ``keep``) computing in fp16."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = _copy(model)
    graph = model.graph
    types = _tensor_types(model)
    original = [_copy_node(n) for n in graph.node]  # standalone protos: stable identities for `low`
    low = {id(n) for n in original if n.op_type in FP16_OPS - keep and n.domain in ("", "ai.onnx")}
    half = {}  # tensor name -> FLOAT16 for tensors that become fp16
    for node in original:
        if id(node) in low:
            half.update({o: TensorProto.FLOAT16 for o in node.output if types.get(o) == TensorProto.FLOAT})
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in original:
        for slot, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, slot))
    outputs = {o.name for o in graph.output}
    for init in graph.initializer:
        users = consumers.get(init.name, [])
        if init.data_type == TensorProto.FLOAT and users and init.name not in outputs and all(
            _wants_half(n, s, low) for n, s in users
        ):
            array = numpy_helper.to_array(init).astype("float16")
            init.CopyFrom(numpy_helper.from_array(array, init.name))
            half[init.name] = TensorProto.FLOAT16
    for out in graph.output:  # outputs stay float32: the fp16 producer writes <name>_fp16, a Cast restores it
        if out.name in half:
            renamed = f"{out.name}_fp16"
            for node in original:
                node.output[:] = [renamed if o == out.name else o for o in node.output]
                node.input[:] = [renamed if i == out.name else i for i in node.input]
            half[renamed] = half.pop(out.name)
    nodes, casts = [], {}
    for node in original:
        for slot, name in enumerate(node.input):
            current = half.get(name, types.get(name))
            if current not in (TensorProto.FLOAT, TensorProto.FLOAT16):
                continue
            target = TensorProto.FLOAT16 if _wants_half(node, slot, low) else TensorProto.FLOAT
            if current != target:
                key = (name, target)
                if key not in casts:
                    casts[key] = f"{name}_as_{'fp16' if target == TensorProto.FLOAT16 else 'fp32'}"
                    nodes.append(onnx.helper.make_node("Cast", [name], [casts[key]], to=target, name=casts[key]))
                node.input[slot] = casts[key]
        nodes.append(node)
    for out in graph.output:
        if f"{out.name}_fp16" in half:
            nodes.append(onnx.helper.make_node("Cast", [f"{out.name}_fp16"], [out.name], to=TensorProto.FLOAT,
                                               name=f"{out.name}_to_fp32"))
            casts[(out.name, TensorProto.FLOAT)] = out.name
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    kept = sorted({n.op_type for n in nodes if id(n) not in low and n.op_type != "Cast"})
    report = Fp16Report(len(low), len(nodes) - len(low) - len(casts), len(casts), tuple(kept))
    return model, report


def _wants_half(node: Any, slot: int, low: set[int]) -> bool:
    return id(node) in low and slot not in _FLOAT32_SLOTS.get(node.op_type, ())


def _tensor_types(model: Any) -> dict[str, int]:
    """Element type of every tensor, from shape inference, inputs, outputs and initializers."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:  # Constant outputs are not always in value_info
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def _copy_node(node: Any) -> Any:
    copy = type(node)()
    copy.CopyFrom(node)
    return copy


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
