"""One engine of a comparison, built on a graph with marked tensors through the hook API.

Every engine gets the same ONNX graph with extra outputs (the tensors being compared), built with
its own ``dk_export`` (or ``dk_quantize`` for int8) and opened with ``dk_load_engine``, so any
engine plugin that reads ONNX works. An engine whose outputs lack the marked tensors (it answers
only the model's declared outputs) is given prefix subgraphs instead, one per tensor, cut with
``onnx.utils.extract_model``. ``torch`` is the graph of its own ONNX export run by ONNX's reference
evaluator (see :mod:`dk.debug.reference`): the torch engine runs torch modules, whose intermediate
tensors have no ONNX names to mark.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np

from dk import api, pipeline
from dk.specs import ModelSource, QuantizeRequest

_counter = itertools.count()
#: Samples per inference call: the comparison needs few samples, and small batches keep each engine's
#: activation memory small (the outputs kept are only the marked tensors').
BATCH = 4


@attrs.define
class Side:
    """How one ``PLUGIN[:PRECISION]`` entry is built and run on marked graphs."""

    plugin: str
    precision: str
    opts: pipeline.BuildOptions
    work: Path
    calibration: Any = None
    calibration_name: str = ""
    #: "marked" until an engine drops marked outputs, then "prefix" (one cut graph per tensor)
    mode: str = "marked"

    @property
    def label(self) -> str:
        return f"{self.plugin}:{self.precision}"

    @property
    def runs_onnx_reference(self) -> bool:
        return self.plugin == "torch"

    def outputs(self, graph_path: Path, marked_path: Path, wanted: Sequence[str], x: pipeline.Inputs) -> dict[str, np.ndarray]:
        """Values of the ``wanted`` tensors over inputs ``x`` on this engine: from ``marked_path`` (the
        graph with them marked as outputs), or prefix subgraphs of ``graph_path`` in prefix mode."""
        if self.mode == "prefix" and not self.runs_onnx_reference:
            return self._prefix_outputs(graph_path, wanted, x)
        values = self._run(marked_path, x)
        missing = [t for t in wanted if t not in values]
        if missing:
            self.mode = "prefix"
            values.update(self._prefix_outputs(graph_path, missing, x))
        return {t: values[t] for t in wanted}

    def _prefix_outputs(self, model_path: Path, tensors: Sequence[str], x: pipeline.Inputs) -> dict[str, np.ndarray]:
        from dk.debug.subgraph import write_prefix
        from dk.errors import DkError

        values: dict[str, np.ndarray] = {}
        for tensor in tensors:
            cut = write_prefix(model_path, [tensor], self.work / f"prefix-{next(_counter)}.onnx")
            got = self._run(cut, x)
            if tensor not in got:
                if len(got) != 1:
                    raise DkError(f"{self.label} returns none of the marked tensors, not even as the only output of a "
                                  f"prefix subgraph ending at {tensor}")
                got = {tensor: next(iter(got.values()))}
            values[tensor] = got[tensor]
        return values

    def _run(self, model_path: Path, x: pipeline.Inputs) -> dict[str, np.ndarray]:
        if self.runs_onnx_reference:
            from dk.debug.reference import ReferenceEngine

            with ReferenceEngine(model_path) as engine:
                return run_batches(engine, x)
        artifact = self.build(model_path)
        try:
            with api.load_engine(self.plugin, artifact, self.opts.device, self.opts.options) as engine:
                return run_batches(engine, x)
        finally:
            release_freed_memory()

    def build(self, model_path: Path):
        """This engine's artifact of ``model_path`` (int8 through its quantize stage when it has one)."""
        from dk.plugins import get_plugin_manager

        source = ModelSource("onnx", str(model_path))
        out = self.work / "artifacts"
        if self.precision == "int8" and get_plugin_manager().implements(self.plugin, "dk_quantize"):
            request = QuantizeRequest(source=source, out_dir=out, calibration=self.calibration,
                                      calibration_name=self.calibration_name, method=self.opts.method,
                                      options=self.opts.options)
            return api.quantize(self.plugin, request)
        request = attrs.evolve(self.opts.export_request(self.precision), source=source, out_dir=out)
        return api.export(self.plugin, request)


def check_side(plugin: str, precision: str) -> None:
    """Refuse, before any graph is loaded or built, an engine of ``--plugins`` that cannot take part:
    a plugin not installed, a precision it does not build, a stage it lacks, or torch in a precision
    other than fp32 (its side is its own fp32 ONNX export: it would report fp32 numbers)."""
    from dk.errors import StageNotImplemented, UsageError
    from dk.plugins import STAGE_HOOKS, get_plugin_manager

    if plugin == "torch" and precision != "fp32":
        raise UsageError(f"--plugins torch:{precision}: the torch plugin exports fp32 ONNX only; give torch "
                         f"(its fp32 export) and an engine that builds {precision}, e.g. torch,ort:{precision}")
    manager = get_plugin_manager()
    manager.get(plugin)  # not installed, or failed to load: says which
    api.check_precision(plugin, precision, f"give one of those in --plugins {plugin}:PRECISION, or another plugin")
    for stage in ("quantize" if precision == "int8" else "export", "load"):
        if not manager.implements(plugin, STAGE_HOOKS[stage]):
            raise StageNotImplemented(f"--plugins {plugin}:{precision}: plugin {plugin!r} does not implement "
                                      f"stage {stage!r} ({STAGE_HOOKS[stage]}), which dk debug diverge needs")


def release_freed_memory() -> None:
    """Give the heap that a closed engine freed back to the operating system (glibc's
    ``malloc_trim``; nothing elsewhere). glibc keeps freed blocks for reuse, so without it every
    build's weights and arenas stay in the resident set and the next build's land on top: the
    peak of a bisection would be that of its builds stacked, not of its largest one."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): it returns memory its own way
        pass


def run_batches(engine: Any, x: pipeline.Inputs) -> dict[str, np.ndarray]:
    """Outputs of ``engine`` over ``x`` in batches of :data:`BATCH` (or the engine's fixed batch), concatenated."""
    from dk.errors import DkError

    parts: dict[str, list[np.ndarray]] = {}
    for _, feeds in pipeline.batches(engine, x, size=BATCH):
        for key, value in engine.infer(feeds).items():
            parts.setdefault(key, []).append(np.asarray(value))
    if not parts:
        raise DkError(f"no complete batch of the engine's fixed batch size in {pipeline.sample_count(x)} samples; raise --samples")
    return {k: np.concatenate(v) for k, v in parts.items()}
