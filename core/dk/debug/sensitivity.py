"""Per-layer int8 sensitivity: the accuracy and output error with one node in float (or one in int8).

Every trial is a real quantization by the plugin's ``dk_quantize`` with the quantize option
``exclude_nodes`` (the nodes kept in float, see docs/architecture-notes.md), run on the evaluation
split and scored against the labels and against the fp32 engine's outputs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import numpy as np

from dk import api, pipeline
from dk.errors import DkError

#: Ops whose quantization costs accuracy (they carry weights); each is one row of ``dk debug layers``.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
FLOAT_NODES_OPTION = "exclude_nodes"


@attrs.frozen
class Trial:
    """One quantized build: which nodes stayed in float, its accuracy and its outputs' error vs fp32."""

    float_nodes: tuple[str, ...]
    accuracy: float
    mean_rel: float
    cosine: float
    artifact: str

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "float_nodes": list(self.float_nodes)}


@attrs.define
class Evaluator:
    """Builds (plugin, fp32) once and int8 variants on demand, scoring each on the same data."""

    plugin: str
    opts: pipeline.BuildOptions
    work: Path
    data: pipeline.EvalData = None
    fp32_outputs: dict[str, np.ndarray] = attrs.field(factory=dict)
    fp32_accuracy: float = float("nan")
    fp32_artifact: Any = None
    trials: list[Trial] = attrs.field(factory=list)

    @classmethod
    def start(cls, plugin: str, opts: pipeline.BuildOptions, work: Path, samples: int | None = None) -> "Evaluator":
        """Build and score fp32; refuse data without labels (accuracy cannot be measured)."""
        evaluator = cls(plugin, opts, work)
        artifact = pipeline.export(plugin, "fp32", attrs.evolve(opts, out=work / "fp32"))
        with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
            data = pipeline.eval_data(opts, engine, limit=samples)
            if data.y is None:
                raise DkError(f"no labels to measure accuracy on ({data.name}); give labelled evaluation data with "
                              "--data (an .npz with x and y, or a dataset folder)")
            evaluator.data, evaluator.fp32_artifact = data, artifact
            evaluator.fp32_outputs = pipeline.run_all(engine, data.model_inputs)
        evaluator.fp32_accuracy = pipeline.top1_accuracy(evaluator.fp32_outputs, data.y)
        return evaluator

    def quantize(self, float_nodes: Sequence[str], out: Path | None = None):
        """The plugin's int8 artifact with ``float_nodes`` kept in float (in the work folder unless ``out``)."""
        options = dict(self.opts.options)
        if float_nodes:
            options[f"{self.plugin}:{FLOAT_NODES_OPTION}"] = ",".join(sorted(float_nodes))
        opts = attrs.evolve(self.opts, out=out or self.work / f"int8-{len(self.trials)}", options=options)
        return pipeline.quantize(self.plugin, opts)

    def trial(self, float_nodes: Sequence[str]) -> Trial:
        """A new quantization with ``float_nodes`` in float, scored."""
        return self.score(self.quantize(float_nodes), float_nodes)

    def score(self, artifact: Any, float_nodes: Sequence[str]) -> Trial:
        """``artifact`` (built with ``float_nodes`` in float) scored on the evaluation data; counted as a trial."""
        from dk.testing.tolerances import cosine_similarity

        with api.load_engine(self.plugin, artifact, self.opts.device, self.opts.options) as engine:
            outputs = pipeline.run_all(engine, self.data.model_inputs)
        key = next(iter(self.fp32_outputs))
        ref, got = np.asarray(self.fp32_outputs[key], np.float64), np.asarray(outputs[key], np.float64)
        mean_rel = float(np.abs(got - ref).sum() / max(np.abs(ref).sum(), 1e-30))
        trial = Trial(tuple(sorted(float_nodes)), pipeline.top1_accuracy(outputs, self.data.y), mean_rel,
                      cosine_similarity(ref, got), str(artifact.path))
        self.trials.append(trial)
        return trial


def graph_nodes(evaluator: Evaluator) -> list[tuple[str, str]]:
    """(name, op) of every named node of the fp32 graph but constants, in graph order."""
    return [(n.name, n.op_type) for n in _fp32_graph(evaluator).node if n.name and n.op_type != "Constant"]


def unnamed_nodes(evaluator: Evaluator) -> int:
    """How many nodes of the fp32 graph (constants aside) have no name: no ``exclude_nodes`` list can
    keep them in float."""
    return sum(1 for n in _fp32_graph(evaluator).node if not n.name and n.op_type != "Constant")


def _fp32_graph(evaluator: Evaluator) -> Any:
    from dk.onnx_io import load_onnx
    from dk.sources import resolve_onnx

    source = evaluator.opts.source()
    export = evaluator.opts.export_request("fp32") if source.kind.startswith("torch") else None
    return load_onnx(resolve_onnx(source, export).path, load_external_data=False).graph


def quantizable_nodes(evaluator: Evaluator) -> list[tuple[str, str]]:
    """(name, op) of the fp32 graph's weighted nodes, in graph order."""
    nodes = [(name, op) for name, op in graph_nodes(evaluator) if op in WEIGHTED_OPS]
    if not nodes:
        raise DkError(f"the model has no named {'/'.join(WEIGHTED_OPS)} node to keep in float")
    return nodes


def layer_sensitivity(evaluator: Evaluator, only_int8: bool = False,
                      progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """One row per weighted node: the trial with only that node in float (or, with ``only_int8``, only
    it in int8), most sensitive first (the node whose float keeps the output closest to fp32, or
    whose int8 moves it furthest)."""
    nodes = quantizable_nodes(evaluator)
    names = [n for n, _ in nodes]
    rows = []
    for i, (name, op) in enumerate(nodes):
        progress(f"layer {i + 1}/{len(nodes)}: {name}")
        start = time.perf_counter()
        trial = evaluator.trial([n for n in names if n != name] if only_int8 else [name])
        rows.append({"node": name, "op": op, "accuracy": trial.accuracy, "mean_rel": trial.mean_rel,
                     "cosine": trial.cosine, "seconds": time.perf_counter() - start})
    rows.sort(key=lambda r: -r["mean_rel"] if only_int8 else r["mean_rel"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


#: The ``schema`` of a ``dk debug layers --json`` document; ``dk report`` charts such a document.
LAYERS_SCHEMA = "dk.debug.layers/1"


def layers_report(plugin: str, opts: pipeline.BuildOptions, *, only_int8: bool = False, samples: int | None = None,
                  progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """``dk debug layers``: fp32 and full-int8 accuracy and the per-layer rows."""
    with tempfile.TemporaryDirectory(prefix="dk-layers-") as tmp:
        evaluator = Evaluator.start(plugin, opts, Path(tmp), samples)
        full = evaluator.trial([])
        rows = layer_sensitivity(evaluator, only_int8, progress)
    return {
        "schema": LAYERS_SCHEMA,
        "plugin": plugin, "mode": "only this node in int8" if only_int8 else "only this node in float",
        "data": evaluator.data.name, "samples": len(evaluator.data.x),
        "accuracy_fp32": evaluator.fp32_accuracy, "accuracy_int8": full.accuracy, "mean_rel_int8": full.mean_rel,
        "layers": rows,
    }
