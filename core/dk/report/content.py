"""What a report says, independent of its format: titled sections of text, tables and figures."""

from __future__ import annotations

from typing import Any

import attrs

from dk.report.plots import series_label, sweeps_sizes


@attrs.define
class Section:
    """A heading with a paragraph, a table (headers + rows of strings) and/or a figure name."""

    title: str
    text: str = ""
    headers: list[str] = attrs.field(factory=list)
    rows: list[list[str]] = attrs.field(factory=list)
    figure: str | None = None
    facts: bool = False  # a two-column name/value table: every value left-aligned


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def sections(document: dict[str, Any], figures: dict[str, bytes]) -> list[Section]:
    runs = document.get("runs", [])
    settings = document.get("settings", {})
    with_size = sweeps_sizes(document)

    def label(run: dict[str, Any]) -> str:
        return series_label(run, with_size)

    out = [_summary(document)]
    pipelined = any(r.get("pipelined") for r in runs)
    out.append(Section("Latency and throughput", headers=[
        "engine:precision", "batch", "status", "p50 ms", "p90 ms", "p99 ms", "cv", "samples/s",
        *(["pipelined samples/s"] if pipelined else []), "pre ms", "infer ms", "post ms", "J/sample"], rows=[[
            label(r), fmt(r["batch"]), r["status"],
            *(fmt((r.get("latency") or {}).get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "cv", "throughput")),
            *([fmt((r.get("pipelined") or {}).get("throughput"))] if pipelined else []),
            *(fmt(((r.get("phases") or {}).get(p) or {}).get("mean_ms")) for p in ("preprocess", "infer", "postprocess")),
            fmt((r.get("energy") or {}).get("j_per_sample")),
        ] for r in runs]))
    for name, title in (("latency", "Latency vs batch size"), ("throughput", "Throughput vs batch size")):
        if name in figures:
            out.append(Section(title, figure=name))
    out.append(_speedups(runs, settings.get("reference"), label))
    out.append(_accuracy(runs, label, settings.get("reference")))
    out.append(_hw(document, "hw" in figures) if not _has_cell_hw(runs) else _cell_hw(runs, label))
    out.append(_model(document.get("model") or {}))
    out.append(_environment(document.get("environment") or {}))
    if document.get("nodes"):
        out.append(_nodes(document["nodes"]))
    groups = group_not_ok(runs, label)
    if groups:
        out.append(Section("Runs that did not complete", headers=["engine:precision", "batches", "status", "error"],
                           rows=[[g["label"], ", ".join(map(str, g["batches"])), g["status"], g["error"] or ""]
                                 for g in groups]))
    return out


def group_not_ok(runs: list[dict], label: Any) -> list[dict[str, Any]]:
    """Runs that failed or were skipped, one group per ``label(run)``, status and error, in run order
    (the batches of a cell that could not be built fail alike): ``{"label", "status", "error", "batches"}``."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        if r.get("status") != "ok":
            key = (label(r), r.get("status"), r.get("error"))
            groups.setdefault(key, {"label": key[0], "status": key[1], "error": key[2], "batches": []})
            groups[key]["batches"].append(r["batch"])
    return list(groups.values())


def _summary(document: dict[str, Any]) -> Section:
    settings = document.get("settings", {})
    region = settings.get("timed_region", {})
    model = document.get("model") or {}
    parts = [
        f"Model {model_title(model)}, device {document.get('device')}{_cpu_words(document)}, "
        f"{len(document.get('runs', []))} run(s), created {document.get('created_at')}.",
        f"Timed region: {'pre-processing + ' if region.get('preprocess') else ''}inference"
        f"{'' if region.get('copies', True) else ' (host<->device copies excluded where the engine can)'}; "
        f"warm-up {settings.get('warmup')}, "
        + (f"{settings['duration_s']} s per run." if settings.get("duration_s") else f"{settings.get('iterations')} iterations per run."),
    ]
    copies = copies_by_engine(document.get("runs", []))
    if len(copies) == 1:
        parts.append(f"Copies: {next(iter(copies))}.")
    elif copies:
        parts.append("Copies: " + "; ".join(f"{', '.join(engines)}: {note}" for note, engines in copies.items()) + ".")
    if not document.get("complete", True):
        parts.insert(0, "INCOMPLETE: the benchmark was interrupted; these are the runs finished before.")
    return Section("Summary", text=" ".join(parts))


def _cpu_words(document: dict[str, Any]) -> str:
    """`` on AMD EPYC (avx2, avx512f, avx512_vnni)``: the CPU the numbers were measured on."""
    env = document.get("environment") or {}
    if not env.get("cpu"):
        return ""
    isa = isa_flags(env)
    return f" on {env['cpu']}" + (f" ({', '.join(isa)})" if isa else "")


def isa_flags(env: dict[str, Any]) -> list[str]:
    """The CPU's ISA flags from an environment record: ``cpu_isa`` is ``{int8_isa, flags, vnni}``
    (older results: a plain list of flags)."""
    isa = env.get("cpu_isa") or []
    return list(isa.get("flags", [])) if isinstance(isa, dict) else list(isa)


def model_title(model: dict[str, Any]) -> str:
    """The model's name, else its source as given (``mynet.models:make_net``, ``mynet.onnx``)."""
    source = model.get("source")
    name = model.get("name")
    if name:
        return name
    if source and source != "default":
        return str(source)
    return "the default model"


def copies_by_engine(runs: list[dict]) -> dict[str, list[str]]:
    """Each distinct copies note with the engine:precision entries it applies to, in run order."""
    notes: dict[str, list[str]] = {}
    for r in runs:
        note = r.get("copies_note")
        if note:
            entry = f"{r['engine']}:{r['precision']}"
            if entry not in notes.setdefault(note, []):
                notes[note].append(entry)
    return notes


def _speedups(runs: list[dict], reference: str | None, label: Any) -> Section:
    ok = [r for r in runs if r.get("status") == "ok"]
    batches = sorted({r["batch"] for r in ok})
    labels = list(dict.fromkeys(label(r) for r in ok))
    cell = {(label(r), r["batch"]): r.get("speedup") for r in ok}
    rows = [[name, *(fmt(cell.get((name, b))) + ("x" if cell.get((name, b)) else "") for b in batches)]
            for name in labels]
    return Section("Speed-up", text=f"p50 latency of the reference ({reference}) over each run's, at the same batch "
                   "size; above 1 is faster.", headers=["engine:precision", *(f"batch {b}" for b in batches)], rows=rows)


def _accuracy(runs: list[dict], label: Any, reference: str | None = None) -> Section:
    """Top-1 per engine:precision, in points against the reference the user chose (``--reference``)
    at the same input size and target when it has an accuracy there, else against the best run."""
    seen: dict[str, Any] = {}
    references: dict[Any, tuple[str, float]] = {}
    for r in runs:
        if r.get("accuracy") is None:
            continue
        key = (tuple(r.get("input_shape") or ())[1:], r.get("target"))
        seen.setdefault(label(r), (r["accuracy"], r.get("data"), key))
        if r.get("reference") or f"{r['engine']}:{r['precision']}" == reference:
            references.setdefault(key, (label(r), r["accuracy"]))
    if not seen:
        return Section("Accuracy", text="The data has no labels, so no accuracy was measured.")
    best = max(acc for acc, _, _ in seen.values())
    if references and all(key in references for _, _, key in seen.values()):
        column = f"points vs {reference or next(iter(references.values()))[0]}"
        text = f"Top-1 accuracy on the whole evaluation split, in points against the reference {reference}."
        base = {key: acc for key, (_, acc) in references.items()}
    else:
        column = "points vs best"
        text = ("Top-1 accuracy on the whole evaluation split, in points against the best run (the reference "
                f"{reference or '-'} has no accuracy{' at every input size' if references else ''}).")
        base = {key: best for _, _, key in seen.values()}
    rows = [[name, f"{acc:.2%}", f"{(acc - base[key]) * 100:+.2f}", data or "-"]
            for name, (acc, data, key) in seen.items()]
    return Section("Accuracy", text=text, headers=["engine:precision", "top-1", column, "data"], rows=rows)


def _hw(document: dict[str, Any], has_figure: bool) -> Section:
    hw = document.get("hw") or {}
    series = hw.get("series") or {}
    errors = "; ".join(f"plugin {e['plugin']} failed once and was not asked again ({e['error']})"
                       for e in hw.get("errors", []))
    if not series:
        return Section("Hardware statistics", text="No hardware statistics were sampled. " + errors)
    rows = [[name, s["unit"], s["source"], fmt(s.get("n")), fmt(s.get("mean")), fmt(s.get("std")),
             fmt(s.get("median")), fmt(s.get("min")), fmt(s.get("max"))] for name, s in series.items()]
    return Section("Hardware statistics", text=f"Sampled every {hw.get('interval_s'):g} s. {errors}".strip(),
                   headers=["metric", "unit", "source", "samples", "mean", "std", "median", "min", "max"], rows=rows,
                   figure="hw" if has_figure else None)


def _has_cell_hw(runs: list[dict]) -> bool:
    return any((r.get("hw") or {}).get("series") for r in runs)


#: Columns of the per-cell table of a fleet sweep, at most this many metrics.
CELL_METRICS = 8


def _cell_hw(runs: list[dict], label: Any) -> Section:
    """A fleet sweep samples on each node during each cell: one row per run, the mean of each metric."""
    metrics: list[str] = []
    for r in runs:
        for name in ((r.get("hw") or {}).get("series") or {}):
            if name not in metrics:
                metrics.append(name)
    metrics = metrics[:CELL_METRICS]
    rows = []
    for r in runs:
        series = (r.get("hw") or {}).get("series") or {}
        rows.append([label(r), fmt(r["batch"]), (r.get("node") or {}).get("hostname", "-"),
                     *(fmt((series.get(m) or {}).get("mean")) for m in metrics)])
    units = {m: next(((r["hw"]["series"][m]).get("unit") for r in runs
                      if m in ((r.get("hw") or {}).get("series") or {})), "") for m in metrics}
    return Section("Hardware statistics per cell",
                   text="Sampled on the node that ran each cell, during the cell; the mean of each metric.",
                   headers=["engine:precision", "batch", "node", *(f"{m} ({units[m]})" for m in metrics)], rows=rows)


def _nodes(nodes: dict[str, Any]) -> Section:
    rows = []
    for node_id, node in nodes.items():
        env = node.get("environment") or {}
        gpus = [g for facts in (env.get("platform") or {}).values() for g in facts.get("gpus", [])]
        rows.append([node.get("hostname", "-"), node_id[:12], fmt(env.get("os")), fmt(env.get("cpu")),
                     fmt(env.get("cpu_cores")), ", ".join(gpus) or "-", fmt(env.get("dk"))])
    return Section("Nodes", text="The machines of the cluster that ran cells.",
                   headers=["hostname", "node", "os", "cpu", "cores", "gpus", "dk"], rows=rows)


def _model(model: dict[str, Any]) -> Section:
    summary = model.get("summary")
    if not summary:
        return Section("Model", text=f"{model_title(model)}: no graph summary "
                       f"({model.get('summary_error', 'not available')}).")
    rows = [
        ["parameters", f"{summary['params']:,} ({summary['param_bytes'] / 2**20:.2f} MiB)"],
        ["MACs per sample", f"{summary['macs']:,}"],
        ["FLOPs per sample", f"{summary['flops']:,}"],
        ["activation memory per sample", f"{summary['activation_bytes'] / 2**10:,.1f} KiB (largest tensor "
                                         f"{summary['largest_activation_bytes'] / 2**10:,.1f} KiB)"],
        ["input", ", ".join(f"{k} {v}" for k, v in summary["input_shapes"].items())],
        ["nodes", ", ".join(f"{op} {n}" for op, n in summary["ops"].items())],
    ]
    of = f", on {model['summary_of']}" if model.get("summary_of") else ""
    return Section("Model", text=f"{model_title(model)}: computed from the ONNX graph with "
                   f"shape inference (batch 1){of}.", headers=["quantity", "value"], rows=rows, facts=True)


def _environment(env: dict[str, Any]) -> Section:
    rows = [[k, fmt(env.get(k))] for k in ("os", "cpu", "cpu_cores", "ram_gib", "python", "dk", "date")]
    if env.get("cpu_isa") is not None:  # speed figures depend on these: AVX2-only vs AVX-512 VNNI
        rows.insert(2, ["cpu_isa", ", ".join(isa_flags(env)) or "none of " + "/".join(("avx2", "avx512f", "neon"))])
    git = env.get("git")
    rows.append(["git", f"{git['commit'][:12]}{' (dirty)' if git['dirty'] else ''}" if git else "-"])
    rows.append(["libraries", ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items())])
    rows.append(["plugins", ", ".join(f"{k} {v}" for k, v in (env.get("plugins") or {}).items())])
    for name, facts in (env.get("platform") or {}).items():
        rows.append([f"platform {name}", ", ".join(f"{k}: {v}" for k, v in facts.items())])
    return Section("Environment", headers=["component", "value"], rows=rows, facts=True)
