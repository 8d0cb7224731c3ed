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


#: A value axis goes logarithmic when its largest value is more than this many times its smallest.
LOG_SCALE_RANGE = 10.0
#: Over 20 series the colormap's neighbours look alike, so the line styles vary too.
LINESTYLES = ("-", "--", ":", "-.")


def colours(n: int) -> list[Any]:
    """``n`` distinct colours: tab10 up to 10, tab20 up to 20, else evenly spaced on a colormap."""
    import numpy as np

    plt = _pyplot()
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return list(plt.get_cmap("turbo")(np.linspace(0.05, 0.95, n)))


def wants_log_scale(values: list[float]) -> bool:
    """True when the positive ``values`` span more than :data:`LOG_SCALE_RANGE` times."""
    positive = [v for v in values if v and v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_SCALE_RANGE


def latency_and_throughput(document: dict[str, Any]) -> dict[str, bytes]:
    """:func:`latency_figures` as PNG bytes."""
    return {name: _png(fig) for name, fig in latency_figures(document).items()}


def latency_figures(document: dict[str, Any]) -> dict[str, Any]:
    """Two matplotlib figures: p50 latency (bars from min to p90) and throughput, both vs batch size, one
    series per engine:precision; the value axis is logarithmic when it spans more than 10x, so that
    fast engines do not sit flat at 0 beside slow ones."""
    plt = _pyplot()
    groups = _by_series(document)
    if not groups:
        return {}
    figures = {}
    palette = colours(len(groups))
    for name, ylabel, pick in (
        ("latency", "latency per batch, ms (p50; bars: min to p90)", lambda r: r["latency"]["p50_ms"]),
        ("throughput", "throughput, samples/s", lambda r: r["latency"]["throughput"]),
    ):
        fig, ax = plt.subplots(figsize=(7.5, 4.4))
        values = []
        for i, (label, runs) in enumerate(groups.items()):
            x = [r["batch"] for r in runs]
            y = [pick(r) for r in runs]
            values += y
            style = {"marker": "o", "label": label, "color": palette[i], "linestyle": LINESTYLES[i % 4] if len(groups) > 20 else "-"}
            if name == "latency":
                low = [max(0.0, r["latency"]["p50_ms"] - r["latency"]["min_ms"]) for r in runs]
                high = [max(0.0, r["latency"]["p90_ms"] - r["latency"]["p50_ms"]) for r in runs]
                ax.errorbar(x, y, yerr=[low, high], capsize=3, **style)
            else:
                ax.plot(x, y, **style)
        batches = sorted({r["batch"] for runs in groups.values() for r in runs})
        if len(batches) > 1 and batches[-1] / batches[0] >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        log = wants_log_scale(values)
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, 10 rather than 10^-1
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
        ax.set_title(f"{name} vs batch size ({document.get('device', 'cpu')})")
        ax.grid(True, which="both" if log else "major", alpha=0.3)
        ax.legend(fontsize=8, title="engine:precision", title_fontsize=8,
                  **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if len(groups) > 6 else {}))
        figures[name] = fig
    return figures


def run_windows(document: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, start, end) of every measured run, in seconds since the sampling started."""
    started = (document.get("hw") or {}).get("started_at") or 0.0
    with_size = sweeps_sizes(document)
    return [(f"{series_label(r, with_size)} b{r['batch']}", r["window"][0] - started, r["window"][1] - started)
            for r in document.get("runs", []) if r.get("window")]


def hw_timeline(document: dict[str, Any], max_metrics: int = 8) -> bytes | None:
    """:func:`hw_figure` as PNG bytes (None without samples)."""
    fig = hw_figure(document, max_metrics)
    return None if fig is None else _png(fig)


def hw_figure(document: dict[str, Any], max_metrics: int = 8) -> Any:
    """A matplotlib figure of the hardware statistics over time, one panel per metric, under a panel with one named row per
    measured run (``ort:int8 b8``) whose bar spans the run's window; each run's window is shaded in
    its own colour (no colour repeats) in the metric panels below."""
    hw = document.get("hw") or {}
    series = {k: v for k, v in (hw.get("series") or {}).items() if v.get("t")}
    if not series:
        return None
    plt = _pyplot()
    names = sorted(series)[:max_metrics]
    windows = run_windows(document)
    runs_height = 0.17 * len(windows) + 0.3 if windows else 0.0
    heights = ([runs_height] if windows else []) + [1.5] * len(names)
    fig, axes = plt.subplots(len(heights), 1, figsize=(8, sum(heights) + 0.9), sharex=True, squeeze=False,
                             layout="constrained", gridspec_kw={"height_ratios": heights})
    panels = axes[:, 0]
    span = max([t for s in series.values() for t in s["t"]] + [b for _, _, b in windows] + [1e-9])
    shortest = span / 150  # a run shorter than this is drawn this wide, or it would not show
    palette = colours(len(windows))
    drawn = [(label, a, max(b, a + shortest)) for label, a, b in windows]
    if windows:
        ax = panels[0]
        for row, (colour, (label, a, b)) in enumerate(zip(palette, drawn)):
            ax.barh(row, b - a, left=a, height=0.7, color=colour)
        ax.set_yticks(range(len(drawn)), [label for label, _, _ in drawn], fontsize=7)
        ax.set_ylim(len(drawn) - 0.5, -0.5)  # first run on top
        ax.set_title("measured runs (engine:precision, batch)", fontsize=8, loc="left")
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
        panels = panels[1:]
    for ax, name in zip(panels, names):
        s = series[name]
        for colour, (_, a, b) in zip(palette, drawn):
            ax.axvspan(a, b, color=colour, alpha=0.3, lw=0)
        ax.plot(s["t"], s["v"], lw=1.2, color="black")
        if s.get("mean") is not None:
            ax.axhline(s["mean"], color="grey", ls="--", lw=0.8)
        ax.set_ylabel(f"{name}\n{s['unit']}", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    widened = any(b - a < shortest for _, a, b in windows)
    note = f"; runs under {shortest:.2g} s drawn {shortest:.2g} s wide" if widened else ""
    axes[-1, 0].set_xlabel(f"seconds since the benchmark started (shaded: measured runs{note}; dashed: mean)",
                           fontsize=8)
    fig.suptitle(f"hardware statistics every {hw.get('interval_s', 0):g} s", fontsize=10)
    return fig


def all_figures(document: dict[str, Any]) -> dict[str, bytes]:
    figures = latency_and_throughput(document)
    timeline = hw_timeline(document)
    if timeline is not None:
        figures["hw"] = timeline
    return figures
