"""The ``--profile-layers`` table: slowest layers first, capped, with the rest summed in one line."""

from __future__ import annotations

from rich.console import Console

from dk.cli.layer_table import TOP_LAYERS, print_layer_table


def render(rows, **kw) -> str:
    console = Console(record=True, width=200, color_system=None)
    print_layer_table(rows, console, **kw)
    return console.export_text()


def rows_of(times_ms: list[float], calls: int = 10) -> list[dict]:
    total = sum(times_ms)
    return [{"layer": f"conv{i}", "mean_ms": t, "total_ms": t * calls, "percent": 100 * t / total, "calls": calls}
            for i, t in enumerate(times_ms)]


def test_every_row_is_shown_with_its_values():
    rows = [
        {"layer": "Conv_0 + Relu_1", "mean_ms": 0.125, "total_ms": 1.25, "percent": 62.5, "calls": 10},
        {"layer": "Gemm_4", "mean_ms": 0.05, "total_ms": 0.5, "percent": 25.0, "calls": 10},
        {"layer": "Softmax_5", "mean_ms": 0.025, "total_ms": 0.25, "percent": 12.5, "calls": 10},
    ]
    text = render(rows)
    assert "per-layer profile (3 layers, 0.200 ms per run)" in text
    lines = [line for line in text.splitlines() if "Conv_0" in line or "Gemm_4" in line or "Softmax_5" in line]
    assert len(lines) == 3 and "Conv_0 + Relu_1" in lines[0] and "Softmax_5" in lines[2]  # order kept
    assert "0.1250" in lines[0] and "62.5" in lines[0] and lines[0].rstrip().rstrip("│").strip().endswith("10")
    assert "more" not in text


def test_only_the_top_rows_are_listed_and_the_rest_is_summed():
    times = [float(100 - i) / 100 for i in range(TOP_LAYERS + 12)]
    rows = rows_of(times)
    text = render(rows)
    assert f"conv{TOP_LAYERS - 1} " in text and f"conv{TOP_LAYERS} " not in text
    (more,) = [line for line in text.splitlines() if "... 12 more" in line]
    rest = rows[TOP_LAYERS:]
    assert f"{sum(r['mean_ms'] for r in rest):.4f}" in more
    assert f"{sum(r['percent'] for r in rest):.1f}" in more


def test_top_can_be_smaller_and_an_empty_profile_says_so():
    text = render(rows_of([3.0, 2.0, 1.0]), top=1, title="trt fp16 batch 8")
    assert "trt fp16 batch 8 (3 layers, 6.000 ms per run)" in text and "... 2 more" in text
    assert "conv1" not in text
    assert render([]).strip() == "per-layer profile: the engine reported no layer times"
