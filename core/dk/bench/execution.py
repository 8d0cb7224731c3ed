"""Executing a :class:`~dk.bench.sweep.SweepPlan`: build, load, measure, and fill the result document.

Runs are appended to ``document["runs"]`` as they finish, so that an interrupted sweep (Ctrl-C)
still has every finished run to write. A run that fails is recorded with its error and the sweep
goes on.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import attrs
import numpy as np

from dk import api, pipeline
from dk.bench.hwstats import HwSampler, energy_per_sample
from dk.bench.latency import measure_pipeline
from dk.bench.results import SCHEMA
from dk.bench.sweep import Cell, Entry, SweepPlan

Progress = Callable[[str], None]


def new_document(plan: SweepPlan, opts: Any, environment: dict, argv: list[str] | None = None) -> dict[str, Any]:
    """The result document before any run: schema, settings, environment, model."""
    return {
        "schema": SCHEMA,
        "complete": False,
        "interrupted": False,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": argv or [],
        "device": opts.device,
        "settings": plan.settings(),
        "environment": environment,
        "model": model_record(opts, plan),
        "runs": [],
        "hw": None,
    }


def model_record(opts: Any, plan: SweepPlan) -> dict[str, Any]:
    """Name, source and graph summary (per input size) of the model under test."""
    from dk.bench.model_summary import summarize_onnx

    record: dict[str, Any] = {"source": opts.model or ("artifact " + opts.artifact if opts.artifact else "default")}
    try:
        graph = _source_onnx(opts)
        path, meta = graph.path, graph.meta
        record.update(name=meta.get("name"), task=meta.get("task"), trained_accuracy=meta.get("trained_accuracy"))
        if graph.fused_ops:
            record["summary_of"] = (f"the artifact's source {path}: its own graph holds engine-fused ops "
                                    f"({', '.join(graph.fused_ops)}) that ONNX shape inference cannot follow")
        summaries = []
        for size in plan.input_sizes or [None]:
            shapes = _shapes_for(path, size) if size else graph.shapes
            if shapes and not opts.artifact and opts.source().kind.startswith("torch"):
                # a torch export fixes its height and width: export the model at this size
                summaries.append(summarize_onnx(_source_onnx(attrs.evolve(opts, shapes=shapes)).path, None).to_json())
                continue
            summaries.append(summarize_onnx(path, shapes).to_json())
        record["summary"] = summaries[0]
        if len(summaries) > 1:
            record["summaries"] = summaries
    except Exception as exc:  # the summary is information; the benchmark goes on without it
        record["summary"] = None
        record["summary_error"] = f"{type(exc).__name__}: {exc}"
    return record


@attrs.define
class SummaryGraph:
    """The ONNX file a model summary is computed on."""

    path: Any
    meta: dict
    #: the input shapes to summarize at (an artifact's own); None: those the file declares
    shapes: dict[str, tuple[int, ...]] | None = None
    #: the op domains of an artifact's engine-fused graph, when ``path`` is its source instead
    fused_ops: list[str] = attrs.Factory(list)


def _source_onnx(opts: Any) -> SummaryGraph:
    """The ONNX graph to summarize, with the model's metadata. An artifact whose graph holds
    engine-fused ops (ort's ``-o level=all``: ``com.microsoft.nchwc`` convolutions over channels
    padded to the CPU's block) is summarized on its source, at the artifact's input shapes: ONNX
    shape inference knows nothing of those ops, and the MACs they were counted at would be 0."""
    from dk.artifacts import Artifact
    from dk.sources import original_source, resolve_onnx

    if opts.artifact:
        artifact = Artifact.load(opts.artifact)
        shapes = {spec.name: spec.concrete_shape(1) for spec in artifact.inputs}
        domains = artifact.manifest.get("extra", {}).get("op_domains")
        if not domains:
            return SummaryGraph(artifact.model_file, artifact.model_meta, shapes)
        origin = artifact.manifest.get("source", {})
        original = original_source(origin)
        if original is None:
            raise ValueError(f"the artifact's graph holds engine-fused ops ({', '.join(domains)}) that ONNX shape "
                             f"inference cannot follow, and its source {origin.get('location', '?')} is gone or "
                             "changed; bench the original model with --model for its summary")
        return SummaryGraph(resolve_onnx(original).path, artifact.model_meta, shapes, list(domains))
    source = opts.source()
    # a torch source needs --shapes (and the other export options) to become ONNX
    onnx_model = resolve_onnx(source, opts.export_request("fp32") if source.kind.startswith("torch") else None)
    return SummaryGraph(onnx_model.path, {"name": onnx_model.model_name, **onnx_model.model_meta})


def _shapes_for(path: Any, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The first input's shape with height and width set to ``size`` (batch 1)."""
    from dk.onnx_io import io_specs, load_onnx

    spec = io_specs(load_onnx(path, load_external_data=False))[0][0]
    shape = list(spec.concrete_shape(1))
    if len(shape) != 4:
        raise ValueError(f"--input-sizes needs a 4-D image input; {spec.name!r} has shape {list(spec.shape)}")
    shape[2], shape[3] = size
    return {spec.name: tuple(shape)}


def run_plan(plan: SweepPlan, opts: Any, document: dict, sampler: HwSampler | None,
             progress: Progress | None = None) -> None:
    """The in-process runner: measure every cell of ``plan`` here, one after another, appending
    to ``document["runs"]`` as runs finish."""
    for cell in plan.cells():
        run_cell(plan, opts, cell, document["runs"], sampler, progress)
    add_speedups(document, plan.reference or plan.entries[0])


def run_cell(plan: SweepPlan, opts: Any, cell: Cell, runs: list, sampler: HwSampler | None,
             progress: Progress | None = None, build: Callable[[], tuple[Any, dict]] | None = None,
             load: Callable[[str, Any, str, dict], Any] | None = None) -> None:
    """Build and measure one cell, appending one run record per batch to ``runs``. ``build``
    replaces :func:`build_cell` (a fleet runner gets artifacts built elsewhere) and ``load``
    replaces :func:`dk.api.load_engine` (a fleet worker keeps its last engine open for the next
    cell); it returns a context manager giving the engine. Failures are recorded, never raised."""
    progress = progress or (lambda _: None)
    try:
        artifact, options = build() if build is not None else build_cell(cell, opts)
        engine_cm = (load or api.load_engine)(cell.entry.engine, artifact, opts.device, options)
    except Exception as exc:  # recorded; the sweep goes on with the next cell
        for run in failed_runs(plan, opts, cell, failed(exc)["error"]):
            progress(_describe(cell, run["batch"]))
            runs.append(run)
        return
    with engine_cm as engine:
        _measure(plan, cell_options(opts, cell), cell, artifact, engine, runs, sampler, progress)


def cell_options(opts: Any, cell: Cell) -> Any:
    """``opts`` with the cell's input size as the export shapes."""
    if cell.size is None:
        return opts
    return attrs.evolve(opts, shapes=_shapes_for(_source_onnx(opts).path, cell.size))


def build_cell(cell: Cell, opts: Any):
    """The artifact and load options for a cell. The torch engine runs fp16 from its fp32 export
    (a load option), so its fp16 entry builds fp32."""
    size_opts = cell_options(opts, cell)
    entry = cell.entry
    options = dict(opts.options)
    if entry.engine == "torch" and entry.precision == "fp16":
        options["precision"] = "fp16"
        return pipeline.build(entry.engine, "fp32", size_opts), options
    return pipeline.build(entry.engine, entry.precision, size_opts), options


def run_base(plan: SweepPlan, opts: Any, cell: Cell) -> dict[str, Any]:
    """The fields every run record of ``cell`` starts with."""
    entry = cell.entry
    base = {"engine": entry.engine, "precision": entry.precision, "device": opts.device,
            "reference": entry == (plan.reference or plan.entries[0])}
    if cell.target is not None:
        base["target"] = cell.target
    if cell.size is not None:  # --input-sizes: the H x W asked for, also on a run that failed
        base["input_size"] = list(cell.size)
    return base


def failed_runs(plan: SweepPlan, opts: Any, cell: Cell, error: str) -> list[dict[str, Any]]:
    """One failed run record per batch of a cell that could not be built, loaded or run."""
    return [{**run_base(plan, opts, cell), "batch": batch, "input_shape": None, "status": "failed", "error": error}
            for batch in cell.batches]


def _describe(cell: Cell, batch: int) -> str:
    return attrs.evolve(cell, batches=(batch,)).label


def _measure(plan, opts, cell: Cell, artifact, engine, runs: list, sampler, progress: Progress) -> None:
    try:
        data = _Data.for_engine(opts, engine, cell.size)
        check_fed_size(data.model_x, cell, artifact.model_meta, data.name)
    except Exception as exc:  # no data of the cell's size: each of its runs fails with why
        for run in failed_runs(plan, opts, cell, failed(exc)["error"]):
            progress(_describe(cell, run["batch"]))
            runs.append(run)
        return
    meta = artifact.model_meta
    accuracy, scores = _scores(engine, data, meta)
    task = meta.get("task")
    post = (lambda outputs: api.postprocess(task, outputs, meta)) if task else None
    for batch in cell.batches:
        progress(_describe(cell, batch))
        shape = [batch, *np.shape(data.model_x)[1:]]  # what is fed (a dynamic H/W gets the declared size)
        run = {**run_base(plan, opts, cell), "batch": batch, "input_shape": shape, "artifact": str(artifact.path),
               "data": data.name}
        fixed = engine.inputs[0].shape[0] if engine.inputs[0].shape else None
        if isinstance(fixed, int) and fixed != batch:
            runs.append({**run, "status": "skipped", "accuracy": accuracy,
                         "error": f"the engine has a fixed batch of {fixed}; export without --static"})
            continue
        if hasattr(engine, "reset_timings"):
            engine.reset_timings()
        try:
            start = time.time()
            timing = measure_pipeline(engine, data.raw_batch(batch), data.preprocess, post, region=plan.region,
                                      warmup=plan.warmup, iterations=plan.iterations, duration=plan.duration,
                                      batch=batch)
            end = time.time()
            pipelines = getattr(engine, "parallel_requests", 1) > 1 and hasattr(engine, "infer_many")
            feeds = data.preprocess(data.raw_batch(batch)) if plan.profile_layers or pipelines else None
            layers = _profile_layers(engine, cell.entry.engine, feeds) if plan.profile_layers else None
        except Exception as exc:
            runs.append({**run, "accuracy": accuracy, **failed(exc)})
            continue
        run.update(status="ok", accuracy=accuracy, preprocess=data.preprocess_name, **timing.to_json(),
                   window=[start, end])
        if pipelines:
            run["pipelined"] = _pipelined(engine, feeds, batch, timing.latency.iterations)
        if scores is not None:
            run["metrics"] = scores
        if layers is not None:
            run["layers"] = layers
        if hasattr(engine, "timings"):  # remote engines: network time apart from the target's infer time
            run["remote"] = engine.timings()
        if sampler is not None:
            run["energy"] = energy_per_sample(sampler, start, end, batch * timing.end_to_end.iterations)
        runs.append(run)


def check_fed_size(x: np.ndarray, cell: Cell, meta: dict, data_name: str) -> None:
    """Raise :class:`~dk.errors.UsageError` unless the inputs ``x`` have the height and width of
    the cell's ``--input-sizes`` entry, so a run is never labelled with a size it was not fed."""
    if cell.size is None:
        return
    from dk.errors import UsageError

    layout = str((meta.get("preprocessing") or {}).get("layout", "NCHW")).upper()
    shape = np.shape(x)
    fed = tuple(shape[1:3] if layout == "NHWC" else shape[2:4]) if len(shape) == 4 else None
    if fed != tuple(cell.size):
        got = "x".join(map(str, fed)) if fed else f"of shape {list(shape)}"
        raise UsageError(f"the inputs ({data_name}) are {got}, not the {cell.size[0]}x{cell.size[1]} this "
                         "--input-sizes cell asks for; give --data of that size or leave --input-sizes out")


def _pipelined(engine, feeds: dict, batch: int, calls: int) -> dict[str, Any]:
    """Throughput with every request of a pipelining engine busy (``infer_many``, like
    benchmark_app's throughput mode), beside the per-call latency of synchronous ``infer``."""
    requests = int(engine.parallel_requests)
    count = max(calls, 4 * requests)
    engine.infer_many([feeds] * requests)  # every request warm
    start = time.perf_counter()
    engine.infer_many([feeds] * count)
    elapsed = time.perf_counter() - start
    return {"requests": requests, "calls": count, "seconds": round(elapsed, 6),
            "throughput": batch * count / elapsed if elapsed > 0 else None}


def _profile_layers(engine, plugin: str, feeds) -> list[dict]:
    """Per-layer times (``--profile-layers``) from engines that can profile their layers."""
    if not hasattr(engine, "profile_layers"):
        from dk.errors import UsageError

        raise UsageError(f"engine {plugin!r} has no per-layer profiler (--profile-layers needs one, "
                         "e.g. the trt engine)")
    return [dict(row) for row in engine.profile_layers(feeds, runs=10)]


def failed(exc: BaseException) -> dict[str, Any]:
    from dk.errors import DkError

    message = str(exc) if isinstance(exc, DkError) else f"{type(exc).__name__}: {exc}"
    return {"status": "failed", "error": message}


def _scores(engine, data: "_Data", meta: dict) -> tuple[float | None, dict | None]:
    """Top-1 accuracy where labels are known, and the task's metrics (detection mAP,
    per-class precision/recall) for a ``--data`` dataset; one pass over the data."""
    if data.y is None and data.evaluation is None:
        return None, None
    outputs = pipeline.run_all(engine, data.model_inputs)
    accuracy = pipeline.top1_accuracy(outputs, data.y) if data.y is not None else None
    if data.evaluation is None:
        return accuracy, None
    from dk.vision.evaluation import evaluate

    return accuracy, evaluate(outputs, data.evaluation, meta)


@attrs.define
class _Data:
    """Raw samples, the pre-processing that turns them into feeds, and labels.

    For the embedded model the raw samples are its 0..16 pixels and pre-processing is
    :func:`dk.default_model.preprocess`; other data is already model input (pre-processing: none).
    ``raw`` and ``model_x`` are the first input's; a model with more inputs gets the rows of the
    others (``others``) beside them, as many as the batch."""

    name: str
    input_name: str
    raw: np.ndarray
    model_x: np.ndarray
    y: np.ndarray | None
    preprocess_name: str
    evaluation: Any = None
    others: dict[str, np.ndarray] = attrs.field(factory=dict)
    _other_batches: dict[int, dict[str, np.ndarray]] = attrs.field(factory=dict, init=False)

    @classmethod
    def for_engine(cls, opts: Any, engine: Any, size: tuple[int, int] | None = None) -> "_Data":
        """The data ``engine`` is measured on; ``size``: the H x W of a cell of ``--input-sizes``."""
        data = pipeline.eval_data(opts, engine, size=size)
        name = engine.inputs[0].name
        if data.name == "digits-eval":
            from dk.default_model import DATA_PATH

            with np.load(DATA_PATH, allow_pickle=False) as arrays:
                raw = arrays["x_eval"]
            return cls(data.name, name, raw, data.x, data.y, "dk.default_model.preprocess")
        others = {k: v for k, v in (data.inputs or {}).items() if k != name}
        return cls(data.name, name, data.x, data.x, data.y, "none", data.evaluation, others)

    @property
    def model_inputs(self) -> "pipeline.Inputs":
        """Every input's rows, as the model takes them (for scoring over all the data)."""
        return {self.input_name: self.model_x, **self.others} if self.others else self.model_x

    def raw_batch(self, batch: int) -> np.ndarray:
        reps = -(-batch // len(self.raw))
        return np.ascontiguousarray(np.concatenate([self.raw] * reps)[:batch]) if reps > 1 else self.raw[:batch].copy()

    def preprocess(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        if self.preprocess_name == "none":
            return {self.input_name: raw, **self._others_of(len(raw))}
        from dk.default_model import preprocess

        return {self.input_name: np.ascontiguousarray(preprocess(raw))}

    def _others_of(self, batch: int) -> dict[str, np.ndarray]:
        """The other inputs' first ``batch`` rows (repeated when fewer), made once per batch size."""
        if not self.others:
            return {}
        if batch not in self._other_batches:
            reps = -(-batch // len(self.raw))
            self._other_batches[batch] = {k: np.ascontiguousarray(np.concatenate([v] * reps)[:batch])
                                          for k, v in self.others.items()}
        return self._other_batches[batch]


def add_speedups(document: dict, reference: Entry) -> None:
    """``speedup`` of each ok run: the reference's p50 latency over the run's, at the same batch,
    input shape and target (None where the reference has no such run)."""
    ref = {
        (r["batch"], tuple(r.get("input_shape") or ()), r.get("target")): r["latency"]["p50_ms"]
        for r in document["runs"]
        if r["status"] == "ok" and r["engine"] == reference.engine and r["precision"] == reference.precision
    }
    document["settings"]["reference"] = reference.label
    for run in document["runs"]:
        if run["status"] != "ok":
            continue
        base = ref.get((run["batch"], tuple(run.get("input_shape") or ()), run.get("target")))
        run["speedup"] = base / run["latency"]["p50_ms"] if base and run["latency"]["p50_ms"] else None
