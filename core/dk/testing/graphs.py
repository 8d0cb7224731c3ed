"""Hypothesis strategies for small random ONNX graphs to test engines' numerical parity.

Hypothesis draws the structure (ops, channel counts, kernel sizes, spatial size, batch size and
whether the batch is dynamic); the float32 weights come from a numpy RNG seeded by a drawn seed,
so examples shrink by structure and stay reproducible. Every model passes ``onnx.checker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the oldest IR that carries opset 17: readable by every engine we target
INPUT_NAME = "input"
OUTPUT_NAME = "output"
MAX_CHANNELS = 16
ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu")
# conv is listed twice: it is the op engines most often get wrong, so it is drawn most often.
LAYERS_4D = (
    "conv", "conv", "activation", "add", "concat", "maxpool", "averagepool", "globalaveragepool", "flatten",
)
LAYERS_2D = ("gemm", "matmul_add", "activation", "add", "concat")


@attrs.frozen
class GeneratedGraph:
    """A generated model, the batch size to run it at and the ops it holds (shown by Hypothesis)."""

    ops: tuple[str, ...]
    batch: int
    dynamic_batch: bool
    seed: int
    model: onnx.ModelProto = attrs.field(repr=False, eq=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        dims = self.model.graph.input[0].type.tensor_type.shape.dim
        return (self.batch, *(d.dim_value for d in dims[1:]))

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Standard-normal float32 input of ``input_shape``."""
        rng = np.random.default_rng(seed)
        return {INPUT_NAME: rng.standard_normal(self.input_shape).astype(np.float32)}

    def save(self, directory: str | Path) -> Path:
        """Write the model as ``<sha256 prefix>.onnx`` in ``directory`` (same model, same file)."""
        import hashlib

        data = self.model.SerializeToString()
        path = Path(directory) / f"graph-{hashlib.sha256(data).hexdigest()[:16]}.onnx"
        if not path.exists():
            path.write_bytes(data)
        return path


class _Builder:
    """Accumulates nodes and initializers while tracking the shape of the current tensor."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]):
        self.rng, self.shape, self.current = rng, shape, INPUT_NAME
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.ops: list[str] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        # He-style scaling keeps activations near unit size through a few layers.
        array = (self.rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)
        name = self.name("w")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], label: str | None = None, **attributes: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name("n"), **attributes))
        self.ops.append(label or op)
        return out


def _activation(draw, b: _Builder, source: str) -> str:
    op = draw(st.sampled_from(ACTIVATIONS))
    if op == "LeakyRelu":
        alpha = draw(st.sampled_from((0.01, 0.1, 0.2)))
        return b.node(op, [source], label=f"LeakyRelu({alpha})", alpha=alpha)
    return b.node(op, [source])


def _conv(draw, b: _Builder, source: str, out_channels: int | None = None, same: bool = False) -> str:
    _, c, h, w = b.shape
    depthwise = out_channels is None and draw(st.booleans()) and draw(st.booleans())
    out_c = c if depthwise else out_channels or draw(st.integers(1, MAX_CHANNELS // 2))
    group = c if depthwise else 1
    if same:
        k, pad, stride = draw(st.sampled_from((1, 3))), None, 1
        pad = k // 2
    else:
        k = draw(st.integers(1, min(3, h, w)))
        pad = draw(st.integers(0, k // 2))
        stride = draw(st.integers(1, 2))
    weight = b.weight((out_c, c // group, k, k), fan_in=(c // group) * k * k)
    bias = b.weight((out_c,), fan_in=1) if draw(st.booleans()) else None
    inputs = [source, weight] + ([bias] if bias else [])
    out = b.node("Conv", inputs, label=f"Conv({c}->{out_c},k{k},p{pad},s{stride},g{group})",
                 kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride], group=group)
    b.shape = (b.shape[0], out_c, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
    return out


def _dense(
    draw, b: _Builder, source: str, out_features: int | None = None, use_gemm: bool | None = None
) -> str:
    n, f = b.shape
    out_f = out_features or draw(st.integers(1, 16))
    gemm = draw(st.booleans()) if use_gemm is None else use_gemm
    bias = b.weight((out_f,), fan_in=1)
    if gemm:
        trans_b = draw(st.booleans())
        weight = b.weight((out_f, f) if trans_b else (f, out_f), fan_in=f)
        label = f"Gemm({f}->{out_f},transB={int(trans_b)})"
        out = b.node("Gemm", [source, weight, bias], label=label, transB=int(trans_b))
    else:
        weight = b.weight((f, out_f), fan_in=f)
        product = b.node("MatMul", [source, weight], label=f"MatMul({f}->{out_f})")
        out = b.node("Add", [product, bias], label="Add(bias)")
    b.shape = (n, out_f)
    return out


def _layer_4d(draw, b: _Builder, kind: str) -> str:
    x = b.current
    _, c, h, w = b.shape
    if kind == "conv":
        return _conv(draw, b, x)
    if kind == "activation":
        return _activation(draw, b, x)
    if kind == "add":  # residual: x + Conv(x) with the same shape
        return b.node("Add", [x, _conv(draw, b, x, out_channels=c, same=True)], label="Add(residual)")
    if kind == "concat" and 2 * c <= MAX_CHANNELS:
        branch = _activation(draw, b, x)
        b.shape = (b.shape[0], 2 * c, h, w)
        return b.node("Concat", [x, branch], label="Concat(axis=1)", axis=1)
    if kind in ("maxpool", "averagepool") and min(h, w) >= 2:
        k = draw(st.integers(2, min(3, h, w)))
        stride = draw(st.integers(1, k))
        op = "MaxPool" if kind == "maxpool" else "AveragePool"
        b.shape = (b.shape[0], c, (h - k) // stride + 1, (w - k) // stride + 1)
        return b.node(op, [x], label=f"{op}(k{k},s{stride})", kernel_shape=[k, k], strides=[stride, stride])
    if kind == "globalaveragepool":
        b.shape = (b.shape[0], c, 1, 1)
        return b.node("GlobalAveragePool", [x])
    if kind == "flatten":
        b.shape = (b.shape[0], c * h * w)
        return b.node("Flatten", [x], axis=1)
    return _activation(draw, b, x)  # the drawn layer does not fit this shape


def _layer_2d(draw, b: _Builder, kind: str) -> str:
    x = b.current
    n, f = b.shape
    if kind == "gemm":
        return _dense(draw, b, x, use_gemm=True)
    if kind == "matmul_add":
        return _dense(draw, b, x, use_gemm=False)
    if kind == "add":
        return b.node("Add", [x, _dense(draw, b, x, out_features=f)], label="Add(residual)")
    if kind == "concat" and 2 * f <= 64:
        branch = _activation(draw, b, x)
        b.shape = (n, 2 * f)
        return b.node("Concat", [x, branch], label="Concat(axis=1)", axis=1)
    return _activation(draw, b, x)


def _value_info(name: str, shape: tuple[int, ...], dynamic: bool) -> onnx.ValueInfoProto:
    dims: list[int | str] = ["batch" if dynamic else shape[0], *shape[1:]]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


@st.composite
def onnx_graphs(
    draw, max_layers: int = 5, dynamic_batch: bool | None = None, image_input: bool | None = None
):
    """Strategy for :class:`GeneratedGraph`: an NCHW image or (batch, features) input through
    1..``max_layers`` layers to one float32 output, batch 1..4, dynamic or fixed batch."""
    batch = draw(st.integers(1, 4))
    dynamic = draw(st.booleans()) if dynamic_batch is None else dynamic_batch
    seed = draw(st.integers(0, 2**32 - 1))
    image = draw(st.integers(0, 2)) > 0 if image_input is None else image_input  # 2/3 images
    if image:
        channels, height, width = (draw(st.integers(1, 8)) for _ in range(3))
        shape: tuple[int, ...] = (batch, channels, height, width)
    else:
        shape = (batch, draw(st.integers(1, 32)))
    b = _Builder(np.random.default_rng(seed), shape)
    input_shape = shape
    for _ in range(draw(st.integers(1, max_layers))):
        if len(b.shape) == 4:
            b.current = _layer_4d(draw, b, draw(st.sampled_from(LAYERS_4D)))
        else:
            b.current = _layer_2d(draw, b, draw(st.sampled_from(LAYERS_2D)))
    b.nodes.append(helper.make_node("Identity", [b.current], [OUTPUT_NAME], name=b.name("n")))
    graph = helper.make_graph(
        b.nodes, "generated", [_value_info(INPUT_NAME, input_shape, dynamic)],
        [_value_info(OUTPUT_NAME, b.shape, dynamic)], initializer=b.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dk.testing")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return GeneratedGraph(tuple(b.ops), batch, dynamic, seed, model)


def batch_sizes(max_batch: int = 4) -> st.SearchStrategy[int]:
    """Batch sizes 1..``max_batch``."""
    return st.integers(1, max_batch)
