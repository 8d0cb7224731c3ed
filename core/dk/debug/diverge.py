"""``dk debug diverge``: the first node where two engines disagree, its errors and a subgraph to report."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from dk import pipeline
from dk.debug.bisect import Search, TensorCheck, bisect
from dk.debug.sides import Side
from dk.errors import DkError, UsageError


@attrs.define
class DivergeResult:
    """What ``dk debug diverge`` found, ready for the table and ``--json``."""

    reference: str
    candidate: str
    graph: str
    data: str
    samples: int
    search: Search
    precision: str
    subgraph: str | None = None
    seconds: float = 0.0
    mode: str = "marked"
    torch_export: dict[str, Any] | None = None
    #: Ctrl-C came after the search, while the torch engine was checked against its export
    interrupted_in_torch_check: bool = False
    #: why the culprit's subgraph could not be written (the search's result stands), None when it was
    subgraph_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        s = self.search
        culprit = s.culprit.to_json() if s.culprit else None
        if culprit:
            culprit["error"] = _check_at(s, s.culprit.tensor)
        last_good_error, proven_by = _last_good_evidence(s)
        if s.interrupted:
            search_status = "interrupted"
        elif s.diverged is False:
            search_status = "no-divergence"
        elif s.culprit:
            search_status = "found"
        else:
            search_status = "not-located"
        return {
            "status": "interrupted" if self.interrupted_in_torch_check else search_status,
            "search_status": search_status, "reference": self.reference, "candidate": self.candidate, "graph": self.graph,
            "data": self.data, "samples": self.samples, "tolerance_precision": self.precision,
            "candidate_nodes": len(s.nodes), "builds": s.builds, "mode": self.mode, "seconds": self.seconds,
            "culprit": culprit,
            "last_good": s.last_good.name if s.last_good else None,
            "last_good_error": last_good_error,
            "last_good_proven_by": proven_by,
            "outputs": {k: v.to_json() for k, v in s.output_checks.items()},
            "subgraph": self.subgraph,
            "subgraph_error": self.subgraph_error,
            "torch_export": self.torch_export,
            "interrupted_during": ("search" if s.interrupted else "torch export check"
                                   if self.interrupted_in_torch_check else None),
            "steps": [step.to_json() for step in s.steps],
        }


def _last_good_evidence(search: Search) -> tuple[dict[str, Any] | None, str | None]:
    """The last agreeing node's own check, or, when it was never compared itself (a node computed
    from it agreed, which vouches for it), None and the name of that node."""
    if search.last_good is None:
        return None, None
    error = _check_at(search, search.last_good.tensor)
    if error is not None or search.last_good_proven_by is None:
        return error, None
    return None, search.last_good_proven_by.name


def _check_at(search: Search, tensor: str) -> dict[str, Any] | None:
    for step in reversed(search.steps):
        if tensor in step.checks:
            return step.checks[tensor].to_json()
    return None


def check_tensor(name: str, reference: Any, candidate: Any, precision: str,
                 clamp: tuple[float | None, float | None] | None = None, graph_output: bool = False) -> TensorCheck:
    """One tensor judged by the tolerance of ``precision`` (:mod:`dk.testing.tolerances`), both
    sides clamped to ``clamp`` first when given (:class:`dk.debug.graph.NodeInfo`). Top-1 agreement
    counts only for a ``graph_output`` (2-D: a classifier's scores), as in ``dk compare``: an
    intermediate 2-D tensor (flattened features) is no set of class scores."""
    from dk.testing.tolerances import compare_output, tolerance_for

    ref = np.asarray(reference)
    if clamp is not None:
        ref, candidate = np.clip(ref, *clamp), np.clip(np.asarray(candidate), *clamp)
    tolerance = tolerance_for(precision)
    if not (graph_output and ref.ndim == 2) and tolerance.min_top1 is not None:
        tolerance = attrs.evolve(tolerance, min_top1=None)
    result = compare_output(name, ref, candidate, tolerance)
    return TensorCheck(name, result.passed, result.max_abs, result.max_rel, result.cosine, result.failures, clamp)


def loosest_precision(*precisions: str) -> str:
    order = ["fp32", "fp16", "int8"]
    return max(precisions, key=order.index)


def diverge(engines: list[tuple[str, str]], opts: pipeline.BuildOptions, *, samples: int = 16, per_build: int = 3,
            subgraph: Path | None = None, prefix: bool = False, mark_all: bool = False,
            progress: Callable[[str], None] = lambda _: None) -> DivergeResult:
    """Bisect ``engines[0]`` (reference) against ``engines[1]`` on the graph of ``opts``' model."""
    from dk.debug.graph import candidate_inputs, candidate_nodes, load_graph, save_marked, uses_external_data, value_infos
    from dk.debug.subgraph import check_writable, write_prefix

    check_request(engines, opts)
    if subgraph is not None:
        check_writable(subgraph, "--subgraph")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dk-diverge-") as tmp:
        work = Path(tmp)
        graph_path = graph_under_test(engines, opts)
        model = load_graph(graph_path)
        external = uses_external_data(model)
        infos = value_infos(model)
        nodes = candidate_nodes(model, infos)
        if not nodes:
            raise DkError(f"{graph_path.name} has no node with a float output to compare")
        outputs = [o.name for o in model.graph.output]
        data = _eval_data(opts, model, samples)
        x = whole_batches(pipeline.take_rows(data.model_inputs, 0, samples), model)
        calibration, calibration_name = _calibration(engines, opts)
        sides = [Side(p, q, opts, work, calibration, calibration_name, "prefix" if prefix else "marked")
                 for p, q in engines]
        precision = loosest_precision(*(q for _, q in engines))
        clamps = {n.tensor: n.clamp for n in nodes if n.clamp is not None}
        def probe(tensors, with_outputs=True):
            progress(f"build {len(probe.calls) + 1}: marking {len(tensors)} tensor(s)")
            probe.calls.append(tensors)
            marked = work / f"marked-{len(probe.calls)}.onnx"
            if with_outputs:
                save_marked(graph_path, tensors, marked, infos, outputs, external)
                wanted = list(dict.fromkeys([*outputs, *tensors]))
            else:  # once the outputs are judged, only the graph up to the marked tensors is built
                write_prefix(graph_path, tensors, marked, infos)
                wanted = list(tensors)
            ref = sides[0].outputs(graph_path, marked, wanted, x)
            cand = sides[1].outputs(graph_path, marked, wanted, x)
            marked.unlink()
            checks = {t: check_tensor(t, ref[t], cand[t], precision, clamps.get(t), t in outputs) for t in wanted}
            del ref, cand
            return checks

        probe.calls = []
        if mark_all:
            search = _mark_all(nodes, outputs, probe)
        else:
            search = bisect(nodes, outputs, probe, candidate_inputs(model, nodes, infos), per_build)
        torch_check, interrupted = None, False
        if any(p == "torch" for p, _ in engines) and not search.interrupted:
            progress("checking the torch engine against its ONNX export")
            try:
                torch_check = torch_export_check(graph_path, opts, x)
            except KeyboardInterrupt:  # the search's result stands: printed before exit 130
                interrupted = True
        written, subgraph_error = None, None
        if search.culprit is not None and subgraph is not None and not interrupted:
            try:
                written = str(write_prefix(graph_path, [search.culprit.tensor], subgraph, infos))
            except DkError as exc:  # the search's result stands; only its attachment is missing
                subgraph_error = str(exc)
        return DivergeResult(
            reference=sides[0].label, candidate=sides[1].label, graph=_graph_name(graph_path, opts),
            data=data.name, samples=pipeline.sample_count(x), search=search, precision=precision, subgraph=written,
            seconds=time.perf_counter() - started,
            mode="prefix" if any(s.mode == "prefix" for s in sides) else "marked", torch_export=torch_check,
            subgraph_error=subgraph_error, interrupted_in_torch_check=interrupted,
        )


def check_request(engines: list[tuple[str, str]], opts: pipeline.BuildOptions) -> None:
    """Usage errors of ``dk debug diverge`` that need no graph: found before the torch export or any build."""
    from dk.debug.sides import check_side

    if len(engines) != 2:
        raise UsageError("--plugins: dk debug diverge compares exactly two engines, e.g. torch,ort:int8")
    if opts.artifact:
        raise UsageError("--artifact: dk debug diverge rebuilds each engine on marked graphs; give --model instead")
    for plugin, precision in engines:
        check_side(plugin, precision)


def _mark_all(nodes, outputs, probe) -> Search:
    """What bisection avoids (Polygraphy's ``--onnx-outputs mark all``): every tensor in one build.
    Kept for the benchmark that measures the difference."""
    from dk.debug.bisect import Step

    search = Search(list(nodes), list(outputs))
    try:
        start = time.perf_counter()
        checks = dict(probe([n.tensor for n in nodes]))
    except KeyboardInterrupt:
        search.interrupted = True
        return search
    search.output_checks = {o: checks[o] for o in outputs if o in checks}
    search.diverged = not all(c.passed for c in search.output_checks.values())
    bad = [n for n in nodes if not checks[n.tensor].passed]
    if search.diverged and bad:
        search.culprit = bad[0]
        search.last_good = nodes[bad[0].index - 1] if bad[0].index > 0 else None
    search.steps.append(Step(1, list(nodes), checks, search.last_good.name if search.last_good else None,
                             search.culprit.name if search.culprit else None, time.perf_counter() - start))
    return search


def graph_under_test(engines: list[tuple[str, str]], opts: pipeline.BuildOptions) -> Path:
    """The fp32 ONNX graph every engine is built from. With ``torch`` among the engines, the torch
    plugin's own export of the model, so torch's intermediate tensors are those of its export."""
    from dk.sources import resolve_onnx

    source = opts.source()
    if any(p == "torch" for p, _ in engines):
        return pipeline.export("torch", "fp32", opts).model_file
    export = opts.export_request("fp32") if source.kind.startswith("torch") else None
    return Path(resolve_onnx(source, export).path)


def _graph_name(path: Path, opts: pipeline.BuildOptions) -> str:
    return "default model" if opts.source().kind == "default" else path.name


def _eval_data(opts: pipeline.BuildOptions, model: Any, samples: int) -> pipeline.EvalData:
    """The evaluation inputs ``dk compare`` would use (``--data``, the default model's split, or
    ``samples`` seeded random ones)."""
    from dk.engine import Engine
    from dk.onnx_io import io_specs

    shell = Engine()
    shell.inputs, shell.outputs = io_specs(model)
    return pipeline.eval_data(opts, shell, random_samples=samples)


def whole_batches(x: pipeline.Inputs, model: Any) -> pipeline.Inputs:
    """``x`` cut to whole batches of the model's fixed batch size (an engine runs only those), so
    the number of samples reported is the number compared; all of ``x`` for a dynamic batch."""
    from dk.onnx_io import io_specs

    inputs, _ = io_specs(model)
    batch = inputs[0].shape[0] if inputs and inputs[0].shape else None
    if not isinstance(batch, int) or batch <= 0:
        return x
    count = pipeline.sample_count(x)
    if count < batch:
        raise UsageError(f"--samples: the model's batch size is fixed at {batch}, more than the {count} "
                         f"sample(s) to compare; give --samples {batch} or more (and --data with as many)")
    return pipeline.take_rows(x, 0, count // batch * batch)


def _calibration(engines: list[tuple[str, str]], opts: pipeline.BuildOptions):
    """Calibration of the user's model, for int8 sides (the marked graphs are plain ONNX files, which
    have no calibration split of their own)."""
    if not any(q == "int8" for _, q in engines) or opts.method != "static":
        return None, ""
    return pipeline.calibration_data(opts, opts.source())


def torch_export_check(graph_path: Path, opts: pipeline.BuildOptions, x: pipeline.Inputs) -> dict[str, Any]:
    """Whether the torch engine agrees (fp32 tolerance) with its own ONNX export at the outputs: when
    it does not, the divergence is in the export itself, before any node of the graph."""
    from dk import api
    from dk.debug.reference import ReferenceEngine

    artifact = pipeline.export("torch", "fp32", opts)
    with api.load_engine("torch", artifact, opts.device, opts.options) as engine:
        torch_out = pipeline.run_all(engine, x)
    with ReferenceEngine(graph_path) as engine:
        onnx_out = pipeline.run_all(engine, x)
    checks = {k: check_tensor(k, torch_out[k], onnx_out[k], "fp32").to_json() for k in onnx_out if k in torch_out}
    return {"passed": all(c["passed"] for c in checks.values()) and bool(checks), "outputs": checks}
