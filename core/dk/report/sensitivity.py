"""The report of ``dk debug layers``: a bar chart of each node's int8 sensitivity and its table,
as self-contained HTML or Markdown with the PNG beside it (the formats of :mod:`dk.report`)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from dk.report.content import Section, fmt


def sensitivity_figure(report: dict[str, Any]) -> bytes:
    """Horizontal bars: mean relative output error vs fp32 per node, most sensitive on top."""
    from dk.report.plots import _png, _pyplot

    plt = _pyplot()
    rows = report["layers"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5))
    ax.barh([r["node"] for r in rows][::-1], [r["mean_rel"] for r in rows][::-1], color="#4878a8")
    ax.axvline(report["mean_rel_int8"], color="#c44", linestyle="--", label="every node in int8")
    ax.set_xlabel(f"mean relative output error vs fp32 ({report['mode']})")
    ax.legend(loc="lower right")
    return _png(fig)


def sensitivity_sections(report: dict[str, Any]) -> list[Section]:
    summary = (f"{report['plugin']}, {report['mode']}, {report['samples']} samples of {report['data']}: fp32 accuracy "
               f"{fmt(report['accuracy_fp32'])}, every node in int8 {fmt(report['accuracy_int8'])} (mean relative "
               f"output error {fmt(report['mean_rel_int8'])}).")
    return [
        Section("Per-layer int8 sensitivity", text=summary, figure="sensitivity"),
        Section("Nodes, most sensitive first", headers=["rank", "node", "op", "accuracy", "mean rel err", "cosine"],
                rows=[[fmt(r["rank"]), r["node"], r["op"], fmt(r["accuracy"]), fmt(r["mean_rel"]), fmt(r["cosine"], 6)]
                      for r in report["layers"]]),
    ]


def write_sensitivity_report(report: dict[str, Any], path: str | Path) -> list[Path]:
    """Write the report to ``path`` (``.html`` or ``.md``, then with ``NAME-sensitivity.png``); the files written."""
    from dk.bench.results import write_text_atomic
    from dk.report import _write_bytes, check_output_path, to_html, to_markdown

    target = check_output_path(path)
    png = sensitivity_figure(report)
    parts = sensitivity_sections(report)
    title = f"dk debug layers --plugin {report['plugin']}"
    if target.suffix.lower() == ".md":
        image = _write_bytes(target.with_name(f"{target.stem}-sensitivity.png"), png)
        return [write_text_atomic(target, to_markdown(title, parts, {"sensitivity": image.name})), image]
    embedded = {"sensitivity": "data:image/png;base64," + base64.b64encode(png).decode()}
    return [write_text_atomic(target, to_html(title, parts, embedded))]
