"""The tables ``dk run bench`` prints at the end: runs, hardware statistics, regressions."""

from __future__ import annotations

from dk.cli import render
from dk.report.content import copies_by_engine
from dk.report.plots import sweeps_sizes

#: The note on runs that vary a lot names at most this many.
NOISY_LISTED = 6

RUN_COLUMNS = [
    ("target", "target"), ("engine", "engine"), ("precision", "precision"), ("batch", "batch"), ("status", "status"),
    ("accuracy", "accuracy"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"), ("cv", "cv"),
    ("throughput", "samples/s"), ("pipelined", "pipelined/s"), ("speedup", "speed-up"), ("pre_ms", "pre ms"), ("infer_ms", "infer ms"),
    ("post_ms", "post ms"), ("energy", "J/sample"),
]


def run_rows(document: dict) -> list[dict]:
    rows = []
    for run in document["runs"]:
        latency = run.get("latency") or {}
        phases = run.get("phases") or {}
        energy = run.get("energy") or {}
        rows.append({
            "target": run.get("target"), "size": _size(run), "engine": run["engine"], "precision": run["precision"], "batch": run["batch"],
            "status": run["status"], "accuracy": run.get("accuracy"), "speedup": run.get("speedup"),
            **{k: latency.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "cv", "throughput")},
            "pre_ms": (phases.get("preprocess") or {}).get("mean_ms"),
            "infer_ms": (phases.get("infer") or {}).get("mean_ms"),
            "post_ms": (phases.get("postprocess") or {}).get("mean_ms"),
            "energy": energy.get("j_per_sample"),
            "pipelined": (run.get("pipelined") or {}).get("throughput"),
        })
    return rows


def print_tables(document: dict, regressions: list, max_regression: float) -> None:
    settings = document["settings"]
    region = settings["timed_region"]
    timed = "pre-process + infer" if region["preprocess"] else "infer"
    runs = document["runs"]
    copies = copies_by_engine(runs)
    title = f"dk run bench (timed region: {timed}; speed-up vs {settings['reference']})"
    if not document["complete"]:
        title += " [INCOMPLETE: interrupted]"
    columns = [c for c in RUN_COLUMNS if (c[0] != "target" or any(r.get("target") for r in runs))
               and (c[0] != "pipelined" or any(r.get("pipelined") for r in runs))]  # only when there are any
    if sweeps_sizes(document):
        columns.insert(columns.index(("batch", "batch")), ("size", "size"))
    measured = any(r["status"] == "ok" for r in runs)
    if measured:  # a table of dashes says nothing the error line does not
        render.rows_table(title, run_rows(document), columns)
        if len(copies) == 1:
            render.note(f"copies: {next(iter(copies))}")
        for note, engines in (copies.items() if len(copies) > 1 else ()):
            render.note(f"copies: {', '.join(engines)}: {note}")
    # every run skipped: the error line at the end says why, once
    groups = not_ok_groups(runs, sweeps_sizes(document)) if measured or any(r["status"] == "failed" for r in runs) else []
    first_failed = next((g for g in groups if g["status"] == "failed"), None)
    for group in groups:
        if group is not first_failed:  # the error line at the end names that one
            render.note(f"[yellow]{group['status']}:[/] {group['what']}: {group['error']}")
    noisy = [r for r in runs if r["status"] == "ok" and (r.get("latency") or {}).get("cv", 0) > 0.2]
    if noisy:
        sized = sweeps_sizes(document)
        listed = ", ".join(f"{_label(r, sized)} batch {r['batch']} (cv {r['latency']['cv']:.2f})" for r in noisy[:NOISY_LISTED])
        more = f" and {len(noisy) - NOISY_LISTED} more" if len(noisy) > NOISY_LISTED else ""
        render.note(f"[yellow]note:[/] {len(noisy)} run(s) vary a lot (cv > 0.2): {listed}{more}; the machine may be busy")
    for run in runs:
        if run.get("layers"):
            from dk.cli.layer_table import print_layer_table

            print_layer_table(run["layers"], render.out, title=f"{_where(run)}{run['engine']}:{run['precision']} "
                              f"batch {run['batch']} per-layer profile")
    for skipped in settings.get("skipped", []):
        render.note(f"skipped {skipped['entry']}: {skipped['reason']}")
    hw = document.get("hw") or {}
    if hw.get("series") and measured:
        rows = [{"metric": name, "unit": s["unit"], "source": s["source"], "n": s.get("n"), "mean": s.get("mean"),
                 "std": s.get("std"), "median": s.get("median"), "max": s.get("max")}
                for name, s in hw["series"].items()]
        render.rows_table(f"hardware statistics (every {hw['interval_s']:g} s)", rows, [
            ("metric", "metric"), ("unit", "unit"), ("source", "source"), ("n", "samples"), ("mean", "mean"),
            ("std", "std"), ("median", "median"), ("max", "max")])
    for error in hw.get("errors", []):
        render.note(f"[yellow]hw stats:[/] plugin {error['plugin']!r} failed once and was not asked again: "
                    f"{error['error']}")
    if regressions:
        render.rows_table(f"regressions beyond {max_regression:.1%} against {document['baseline']['path']}",
                          [{**r.to_json(), "change": f"{r.change:.1%}"} for r in regressions], [
                              ("engine", "engine"), ("precision", "precision"), ("batch", "batch"),
                              ("metric", "metric"), ("baseline", "baseline"), ("current", "current"),
                              ("change", "worse by")])


def not_ok_groups(runs: list[dict], sized: bool) -> list[dict]:
    """Runs that failed or were skipped, grouped as :func:`dk.report.content.group_not_ok` does,
    with ``what`` naming them: ``openvino:int8 batches 1, 4, 16``."""
    from dk.report.content import group_not_ok

    groups = group_not_ok(runs, lambda run: _label(run, sized))
    for group in groups:
        batches = group["batches"]
        group["what"] = f"{group['label']} batch{'es' if len(batches) > 1 else ''} {', '.join(map(str, batches))}"
    return groups


def _label(run: dict, sized: bool) -> str:
    """``rpi4: ort:int8 224x224``: target, engine:precision and, when sizes are swept, the size."""
    size = f" {_size(run)}" if sized and _size(run) else ""
    return f"{_where(run)}{run['engine']}:{run['precision']}{size}"


def _size(run: dict) -> str | None:
    """``224x224``: the H x W of a run's input (what ``--input-sizes`` varies)."""
    shape = run.get("input_shape") or []
    if len(shape) == 4:
        return f"{shape[2]}x{shape[3]}"
    size = run.get("input_size")
    return f"{size[0]}x{size[1]}" if size else None


def _where(run: dict) -> str:
    return f"{run['target']}: " if run.get("target") else ""
