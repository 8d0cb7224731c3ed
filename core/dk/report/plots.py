"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any

from dk.errors import MissingDependency


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency("reports need matplotlib: pip install 'dk-core[report]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def series_label(run: dict[str, Any], with_size: bool = False) -> str:
    """``ort:int8``, plus the input size (``ort:int8 224x224``) when ``with_size``, and the fleet
    target (``ort:int8 @rpi4``) of a run pinned to one."""
    shape = run.get("input_shape") or []
    size = f" {shape[2]}x{shape[3]}" if with_size and len(shape) == 4 else ""
    target = f" @{run['target']}" if run.get("target") else ""
    return f"{run['engine']}:{run['precision']}{size}{target}"


def sweeps_sizes(document: dict[str, Any]) -> bool:
    return len((document.get("settings") or {}).get("input_sizes") or []) > 1


def _by_series(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in document.get("runs", []):
        if run.get("status") == "ok":
            groups.setdefault(series_label(run, sweeps_sizes(document)), []).append(run)
    for runs in groups.values():
        runs.sort(key=lambda r: r["batch"])
    return groups


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def latency_and_throughput(document: dict[str, Any]) -> dict[str, bytes]:
    """Two figures: p50 latency (bars from p10-ish min to p90) and throughput, both vs batch size."""
    plt = _pyplot()
    groups = _by_series(document)
    if not groups:
        return {}
    figures = {}
    for name, ylabel, pick in (
        ("latency", "latency per batch, ms (p50; bars: min to p90)", lambda r: r["latency"]["p50_ms"]),
        ("throughput", "throughput, samples/s", lambda r: r["latency"]["throughput"]),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, runs in groups.items():
            x = [r["batch"] for r in runs]
            y = [pick(r) for r in runs]
            if name == "latency":
                low = [max(0.0, r["latency"]["p50_ms"] - r["latency"]["min_ms"]) for r in runs]
                high = [max(0.0, r["latency"]["p90_ms"] - r["latency"]["p50_ms"]) for r in runs]
                ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=label)
            else:
                ax.plot(x, y, marker="o", label=label)
        batches = sorted({r["batch"] for runs in groups.values() for r in runs})
        if len(batches) > 1 and batches[-1] / batches[0] >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name} vs batch size ({document.get('device', 'cpu')})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        figures[name] = _png(fig)
    return figures


def hw_timeline(document: dict[str, Any], max_metrics: int = 8) -> bytes | None:
    """Hardware statistics over time, one panel per metric, with each run's window shaded."""
    hw = document.get("hw") or {}
    series = {k: v for k, v in (hw.get("series") or {}).items() if v.get("t")}
    if not series:
        return None
    plt = _pyplot()
    names = sorted(series)[:max_metrics]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.7 * len(names) + 0.6), sharex=True, squeeze=False)
    started = hw.get("started_at") or 0.0
    windows = [(r["window"][0] - started, r["window"][1] - started) for r in document.get("runs", []) if r.get("window")]
    for ax, name in zip(axes[:, 0], names):
        s = series[name]
        ax.plot(s["t"], s["v"], lw=1.2)
        if s.get("mean") is not None:
            ax.axhline(s["mean"], color="grey", ls="--", lw=0.8)
        for i, (a, b) in enumerate(windows):
            ax.axvspan(a, b, color=f"C{i % 10}", alpha=0.15, lw=0)
        ax.set_ylabel(f"{name}\n{s['unit']}", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("seconds since the benchmark started (shaded: measured runs; dashed: mean)")
    fig.suptitle(f"hardware statistics every {hw.get('interval_s', 0):g} s", fontsize=10)
    return _png(fig)


def all_figures(document: dict[str, Any]) -> dict[str, bytes]:
    figures = latency_and_throughput(document)
    timeline = hw_timeline(document)
    if timeline is not None:
        figures["hw"] = timeline
    return figures
