"""The per-layer table of ``dk run bench --profile-layers`` (like ``trtexec --dumpProfile``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Rows shown; the rest are summed up in one "... N more" line.
TOP_LAYERS = 30


def print_layer_table(rows: Sequence[Mapping[str, Any]], console: Any, title: str = "per-layer profile",
                      top: int = TOP_LAYERS) -> None:
    """Print ``rows`` (``{"layer", "mean_ms", "total_ms", "percent", "calls"}``, slowest first, as an
    engine's ``profile_layers`` returns them) as a rich table on ``console``: the ``top`` slowest
    layers, then one line for the others."""
    from rich.table import Table

    if not rows:
        console.print(f"{title}: the engine reported no layer times")
        return
    shown, rest = list(rows[:top]), rows[top:]
    per_run = sum(float(r["mean_ms"]) for r in rows)
    table = Table(title=f"{title} ({len(rows)} layers, {per_run:.3f} ms per run)")
    table.add_column("layer", overflow="fold")
    for header in ("mean ms", "% of total", "calls"):
        table.add_column(header, justify="right")
    for r in shown:
        table.add_row(str(r["layer"]), f"{float(r['mean_ms']):.4f}", f"{float(r['percent']):.1f}", str(r["calls"]))
    if rest:
        table.add_row(
            f"... {len(rest)} more", f"{sum(float(r['mean_ms']) for r in rest):.4f}",
            f"{sum(float(r['percent']) for r in rest):.1f}", "", style="dim",
        )
    console.print(table)
