"""``dk run all --plugin NAME``: export -> int8 -> parity against the torch reference -> short
benchmark, summarised in one table per precision (accuracy, latency, throughput, speed-up)."""

from __future__ import annotations

from typing import Any

from dk import api, pipeline
from dk.bench.latency import measure_latency
from dk.cli import render
from dk.errors import DkError, MissingDependency, PluginNotFound, StageNotImplemented
from dk.plugins import get_plugin_manager


def _measure(plugin: str, artifact, opts, data, batch: int, warmup: int, iterations: int) -> dict[str, Any]:
    """Outputs over the data, accuracy and latency of one artifact on one engine."""
    with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
        outputs = pipeline.run_all(engine, data.model_inputs)
        feeds = pipeline.repeated_feeds(engine, data.model_inputs, batch)
        stats = measure_latency(engine, feeds, warmup=warmup, iterations=iterations)
    accuracy = pipeline.top1_accuracy(outputs, data.y) if data.y is not None else None
    return {"outputs": outputs, "accuracy": accuracy, "latency": stats.to_json(), "artifact": str(artifact.path)}


def _reference(reference: str, opts, quiet: bool, required: bool):
    """The reference engine's fp32 artifact, or None: with ``--reference none``, or (with a note)
    when the default reference is not installed. A reference named with ``--reference`` must work."""
    if reference == "none":
        return None
    try:
        with render.step(f"exporting the {reference} reference", quiet):
            return pipeline.export(reference, "fp32", reference_options(reference, opts))
    except (PluginNotFound, MissingDependency, StageNotImplemented) as exc:
        if required:
            raise
        render.note(f"[yellow]note:[/] no {reference} reference: {exc}")
        return None


def reference_options(reference: str, opts):
    """``opts`` with only the ``-o REFERENCE:KEY=VALUE`` options: a plain ``-o KEY=VALUE`` is meant
    for the plugin under test, not for the reference it is compared with."""
    import attrs

    scoped = {k: v for k, v in opts.options.items() if k.startswith(f"{reference}:")}
    return attrs.evolve(opts, options=scoped)


#: The reference of ``dk run all`` when ``--reference`` is not given; a note, not an error, when missing.
DEFAULT_REFERENCE = "torch"


def run_all(plugin: str, opts, reference: str | None, batch: int, warmup: int, iterations: int,
            quiet: bool) -> dict:
    """``reference``: the engine named with ``--reference`` (None: :data:`DEFAULT_REFERENCE`)."""
    from dk.testing.tolerances import compare_outputs

    get_plugin_manager().get(plugin)  # fail fast on an unknown plugin, before any work
    required = reference is not None
    reference = reference or DEFAULT_REFERENCE
    if required and reference != "none":
        get_plugin_manager().get(reference)  # a named reference must exist: one error, before any work
    ref_artifact = _reference(reference, opts, quiet, required)  # first: a named reference that fails, fails early
    builds: list[tuple[str, Any]] = []
    with render.step(f"exporting with {plugin} (fp32)", quiet):
        builds.append(("fp32", pipeline.export(plugin, "fp32", opts)))
    if get_plugin_manager().implements(plugin, "dk_quantize"):
        with render.step(f"quantizing with {plugin} (int8)", quiet):
            builds.append(("int8", pipeline.quantize(plugin, opts)))
    else:
        render.note(f"[yellow]note:[/] plugin {plugin!r} has no quantize stage; int8 skipped")

    data = None
    rows: list[dict[str, Any]] = []
    ref = None
    if ref_artifact is not None:
        ref_opts = reference_options(reference, opts)
        with api.load_engine(reference, ref_artifact, "cpu", ref_opts.options) as engine:
            data = pipeline.eval_data(opts, engine)
        with render.step(f"benchmarking {reference} fp32", quiet):
            ref = _measure(reference, ref_artifact, ref_opts, data, batch, warmup, iterations)
        rows.append(_row(reference, "fp32", ref, None, None))
    # Speed-up and parity are measured against the reference or, without one, the plugin's own fp32.
    baseline, baseline_name = ref, (f"{reference} fp32" if ref else f"{plugin} fp32")
    for precision, artifact in builds:
        if data is None:
            with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
                data = pipeline.eval_data(opts, engine)
        with render.step(f"benchmarking {plugin} {precision}", quiet):
            measured = _measure(plugin, artifact, opts, data, batch, warmup, iterations)
        parity = compare_outputs(baseline["outputs"], measured["outputs"], precision) if baseline else None
        rows.append(_row(plugin, precision, measured, baseline, parity))
        baseline = baseline or measured
    if data is None:
        raise DkError("nothing was built")
    model_meta = builds[0][1].model_meta
    report = {
        "stage": "all",
        "plugin": plugin,
        "reference": baseline_name,
        "model": model_meta.get("name"),
        "trained_accuracy": model_meta.get("trained_accuracy"),
        "data": data.name,
        "samples": int(len(data.x)),
        "batch": batch,
        "rows": rows,
        "passed": all(r["parity_ok"] is not False for r in rows),
    }
    if not quiet:
        _print(report)
    if not report["passed"]:
        failed = ", ".join(f"{r['engine']} {r['precision']}" for r in rows if r["parity_ok"] is False)
        from dk.errors import ToleranceExceeded

        error = ToleranceExceeded(f"outside tolerance against {baseline_name}: {failed}")
        error.result = report
        raise error
    return report


def _row(engine: str, precision: str, measured: dict, ref: dict | None, parity) -> dict[str, Any]:
    lat = measured["latency"]
    row = {
        "engine": engine,
        "precision": precision,
        "accuracy": measured["accuracy"],
        "p50_ms": lat["p50_ms"],
        "p90_ms": lat["p90_ms"],
        "throughput": lat["throughput"],
        "cv": lat["cv"],
        "speedup": (ref["latency"]["p50_ms"] / lat["p50_ms"]) if ref else None,
        "parity_ok": parity.passed if parity is not None else None,
        "artifact": measured["artifact"],
    }
    if parity is not None:
        from dk.cli.compare import comparison_rows

        first = comparison_rows(parity)[0]
        row.update(max_abs=first.get("max_abs"), cosine=first.get("cosine"), top1_agreement=first.get("top1_agreement"))
    return row


def _print(report: dict) -> None:
    acc = report["trained_accuracy"]
    render.note(
        f"model {report['model']}: {report['samples']} held-out samples ({report['data']})"
        + (f", accuracy when trained {acc:.2%}" if acc is not None else "")
    )
    ref = report["reference"]
    render.rows_table(f"dk run all --plugin {report['plugin']} (batch {report['batch']})", report["rows"], [
        ("engine", "engine"), ("precision", "precision"), ("accuracy", "accuracy"), ("p50_ms", "p50 ms"),
        ("p90_ms", "p90 ms"), ("throughput", "samples/s"), ("speedup", f"speed-up vs {ref}"),
        ("max_abs", "max abs err"), ("cosine", "cosine"), ("top1_agreement", "top-1 agree"),
        ("parity_ok", "within tol."),
    ])
