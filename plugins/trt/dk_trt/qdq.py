"""Q/DQ ONNX -> the explicit quantization TensorRT accepts (pure ONNX, no TensorRT).

TensorRT quantizes symmetrically to int8 (zero point 0) and keeps biases in float. ONNX Runtime's
quantizer may write uint8 or asymmetric int8 activations and int32-quantized biases, so: biases
behind an int32 DequantizeLinear are folded back to float initializers, and every asymmetric
Q/DQ pair gets the symmetric int8 scale that covers the same calibrated range.
"""

from __future__ import annotations

from typing import Any

import attrs

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@attrs.frozen
class QdqReport:
    qdq_nodes: int
    symmetrized: int
    folded_biases: int


def count_qdq(model: Any) -> int:
    """Number of QuantizeLinear/DequantizeLinear nodes: > 0 means an explicitly quantized model."""
    return sum(1 for n in model.graph.node if n.op_type in QDQ_OPS)


def prepare_for_tensorrt(model: Any) -> tuple[Any, QdqReport]:
    """A copy of ``model`` whose Q/DQ nodes are symmetric int8 and whose biases are float."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    _constants_to_initializers(graph)
    inits = {i.name: i for i in graph.initializer}
    values = {name: numpy_helper.to_array(i) for name, i in inits.items()}
    nodes, folded = [], 0
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in values and values[node.input[0]].dtype == np.int32:
            graph.initializer.append(numpy_helper.from_array(_dequantize(node, values), node.output[0]))
            folded += 1
            continue
        nodes.append(node)
    groups: dict[tuple[str, str], list[Any]] = {}
    for node in nodes:
        if node.op_type in QDQ_OPS:
            zp = node.input[2] if len(node.input) > 2 and node.input[2] else ""
            groups.setdefault((node.input[1], zp), []).append(node)
    symmetrized = 0
    for (scale_name, zp_name), members in groups.items():
        zp = values[zp_name] if zp_name else np.zeros((), np.uint8)
        if zp.dtype == np.int8 and not zp.any():
            continue
        scale = values[scale_name].astype(np.float32)
        info = np.iinfo(zp.dtype)
        low = scale * (info.min - zp.astype(np.float32))
        high = scale * (info.max - zp.astype(np.float32))
        new_scale = (np.maximum(np.abs(low), np.abs(high)) / 127.0).astype(np.float32)
        new_zp_name = f"{zp_name or scale_name}_int8_zero"
        for node in members:
            if node.op_type == "DequantizeLinear" and node.input[0] in values:  # constant (weight) data
                _requantize(node, values, inits, graph, scale, zp, new_scale)
            while len(node.input) < 3:
                node.input.append("")
            node.input[2] = new_zp_name
        _set(graph, inits, scale_name, new_scale)
        _set(graph, inits, new_zp_name, np.zeros(zp.shape, np.int8))
        symmetrized += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.value_info[:]
    copy = onnx.shape_inference.infer_shapes(copy)
    onnx.checker.check_model(copy)
    return copy, QdqReport(count_qdq(copy), symmetrized, folded)


def _dequantize(node: Any, values: dict[str, Any]) -> Any:
    import numpy as np

    data = values[node.input[0]].astype(np.float64)
    scale = values[node.input[1]].astype(np.float64)
    zp = values[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if np.ndim(scale) == 1 and data.ndim > 1:
        shape = [1] * data.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = np.reshape(zp, shape) if np.ndim(zp) else zp
    return ((data - zp) * scale).astype(np.float32)


def _requantize(node, values, inits, graph, scale, zp, new_scale) -> None:
    """Re-express constant quantized data ``(q - zp) * scale`` in int8 with ``new_scale``."""
    import numpy as np

    real = _dequantize(node, values)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    target = new_scale
    if np.ndim(new_scale) == 1 and real.ndim > 1:
        shape = [1] * real.ndim
        shape[axis] = -1
        target = new_scale.reshape(shape)
    quantized = np.clip(np.round(real / np.where(target == 0, 1, target)), -127, 127).astype(np.int8)
    _set(graph, inits, node.input[0], quantized)
    values[node.input[0]] = quantized


def _set(graph: Any, inits: dict[str, Any], name: str, array: Any) -> None:
    from onnx import numpy_helper

    tensor = numpy_helper.from_array(array, name)
    if name in inits:
        inits[name].CopyFrom(tensor)
    else:
        graph.initializer.append(tensor)
        inits[name] = graph.initializer[-1]


def _constants_to_initializers(graph: Any) -> None:
    """Constant nodes feeding Q/DQ scales and zero points become initializers (one place to edit)."""
    wanted = {n.input[i] for n in graph.node if n.op_type in QDQ_OPS for i in (1, 2) if i < len(n.input)}
    keep = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and node.output[0] in wanted and value is not None:
            tensor = type(value)()
            tensor.CopyFrom(value)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
