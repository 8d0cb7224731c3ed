"""The tables ``dk run bench`` prints at the end: runs, hardware statistics, regressions."""

from __future__ import annotations

from dk.cli import render
from dk.report.plots import sweeps_sizes

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
    copies = {r.get("copies_note") for r in runs if r.get("copies_note")}
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
        for note in sorted(copies):
            render.note(f"copies: {note}")
    first_failed = next((r for r in runs if r["status"] == "failed"), None)
    for run in runs:
        if run is first_failed:
            continue  # the error line at the end names it
        if run["status"] != "ok":
            size = f" {_size(run)}" if sweeps_sizes(document) and _size(run) else ""
            render.note(f"[yellow]{run['status']}:[/] {_where(run)}{run['engine']}:{run['precision']}{size} batch {run['batch']}: "
                        f"{run.get('error')}")
        elif (run.get("latency") or {}).get("cv", 0) > 0.2:
            render.note(f"[yellow]note:[/] {_where(run)}{run['engine']}:{run['precision']} batch {run['batch']} varies a lot "
                        f"(cv {run['latency']['cv']:.2f}); the machine may be busy")
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


def _size(run: dict) -> str | None:
    """``224x224``: the H x W of a run's input (what ``--input-sizes`` varies)."""
    shape = run.get("input_shape") or []
    if len(shape) == 4:
        return f"{shape[2]}x{shape[3]}"
    size = run.get("input_size")
    return f"{size[0]}x{size[1]}" if size else None


def _where(run: dict) -> str:
    return f"{run['target']}: " if run.get("target") else ""
