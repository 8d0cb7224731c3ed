"""What a report shows, from hand-made result documents: axis scales and legends of the figures,
the title, table headers, the copies sentence and the accuracy baseline."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="reports need matplotlib: pip install 'dk-core[report]'")

from dk.report import to_html, write_report  # noqa: E402
from dk.report.content import copies_by_engine, sections  # noqa: E402
from dk.report.plots import colours, hw_figure, latency_figures  # noqa: E402


def _run(engine, precision, batch, p50, *, start=0.0, accuracy=None, reference=False, note=None, size=8):
    return {
        "engine": engine, "precision": precision, "batch": batch, "status": "ok", "input_shape": [batch, 1, size, size],
        "latency": {"p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.2, "min_ms": p50 * 0.9, "cv": 0.05,
                    "throughput": batch / p50 * 1e3},
        "window": [100.0 + start, 100.0 + start + 0.5], "accuracy": accuracy, "reference": reference,
        "data": "digits-eval" if accuracy is not None else None, "copies_note": note, "speedup": 1.0,
    }


def _document(runs, model=None, reference="torch:fp32", hw=True):
    t = [i * 0.1 for i in range(60)]
    return {
        "schema": "dk.bench/1", "device": "cpu", "created_at": "now", "runs": runs,
        "model": model if model is not None else {"source": "mynet.models:make_net", "name": None, "summary": None,
                                                  "summary_error": "no shapes"},
        "settings": {"reference": reference, "timed_region": {"preprocess": False, "copies": True}, "warmup": 2,
                     "iterations": 10, "input_sizes": []},
        "hw": {"interval_s": 0.1, "started_at": 100.0, "errors": [],
               "series": {"cpu.util": {"t": t, "v": [50.0] * 60, "unit": "%", "source": "core", "n": 60, "mean": 50.0,
                                       "std": 0.0, "median": 50.0, "min": 50.0, "max": 50.0}}} if hw else None,
        "environment": {"cpu": "AMD EPYC", "cpu_isa": ["avx2"]},
    }


CPU = "engine runs on the CPU: no host<->device copies"
CUDA = "inputs uploaded to cuda before the timed region"


def test_latency_spanning_more_than_10x_is_on_a_log_axis_with_engine_precision_labels():
    runs = [_run("torch", "fp32", 1, 5.0), _run("torch", "fp32", 8, 20.0), _run("ort", "fp32", 1, 0.02),
            _run("ort", "int8", 1, 0.03), _run("ort", "int8", 8, 0.1)]
    figures = latency_figures(_document(runs))
    for name in ("latency", "throughput"):
        ax = figures[name].axes[0]
        assert ax.get_yscale() == "log"
        assert "(log scale)" in ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["torch:fp32", "ort:fp32", "ort:int8"]
    assert figures["latency"].axes[0].yaxis.get_major_formatter()(0.1, 0) == "0.1"


def test_latency_within_10x_stays_linear():
    ax = latency_figures(_document([_run("ort", "fp32", 1, 1.0), _run("ort", "int8", 1, 0.5)]))["latency"].axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "latency per batch, ms (p50; bars: min to p90)"


def test_hw_plot_names_every_run_and_repeats_no_colour_beyond_10():
    runs = [_run("ort", "fp32", b, 1.0, start=i * 0.5) for i, b in enumerate(range(1, 13))]
    fig = hw_figure(_document(runs))
    strip = fig.axes[0]
    assert [t.get_text() for t in strip.get_yticklabels()] == [f"ort:fp32 b{b}" for b in range(1, 13)]
    bars = [tuple(p.get_facecolor()) for p in strip.patches]
    assert len(bars) == 12 and len(set(bars)) == 12
    shaded = [tuple(p.get_facecolor()[:3]) for p in fig.axes[1].patches]
    assert shaded == [c[:3] for c in bars]
    assert len({tuple(c) for c in colours(40)}) == 40


def test_a_user_model_is_titled_by_its_source_and_tables_have_headers(tmp_path):
    document = _document([_run("ort", "fp32", 1, 1.0)])
    path = write_report(document, tmp_path / "r.html")[0]
    html = path.read_text()
    assert "<title>dk benchmark report: mynet.models:make_net</title>" in html
    assert "<th></th>" not in html
    assert "<p>mynet.models:make_net: no graph summary (no shapes).</p>" in html
    named = _document([_run("ort", "fp32", 1, 1.0)], model={"source": "default", "name": "digitsnet", "summary": None})
    assert "<h1>dk benchmark report: digitsnet</h1>" in to_html("dk benchmark report: digitsnet", sections(named, {}), {})
    environment = next(s for s in sections(document, {}) if s.title == "Environment")
    assert environment.headers == ["component", "value"] and ["cpu_isa", "avx2"] in environment.rows


def test_different_copies_notes_name_their_engines_in_one_sentence():
    runs = [_run("torch", "fp32", 1, 1.0, note=CUDA), _run("ort", "fp32", 1, 1.0, note=CPU),
            _run("ort", "int8", 1, 1.0, note=CPU)]
    assert copies_by_engine(runs) == {CUDA: ["torch:fp32"], CPU: ["ort:fp32", "ort:int8"]}
    summary = sections(_document(runs), {})[0].text
    assert summary.endswith(f"Copies: torch:fp32: {CUDA}; ort:fp32, ort:int8: {CPU}.")
    assert summary.count("Copies:") == 1
    assert summary.startswith("Model mynet.models:make_net, device cpu on AMD EPYC (avx2), 3 run(s)")
    same = sections(_document(runs[1:]), {})[0].text
    assert same.endswith(f"Copies: {CPU}.")


def test_accuracy_points_are_against_the_chosen_reference_not_the_best():
    runs = [_run("torch", "fp32", 1, 1.0, accuracy=0.95, reference=True), _run("ort", "fp32", 1, 1.0, accuracy=0.97),
            _run("ort", "int8", 1, 1.0, accuracy=0.94)]
    section = next(s for s in sections(_document(runs), {}) if s.title == "Accuracy")
    assert section.headers == ["engine:precision", "top-1", "points vs torch:fp32", "data"]
    assert [row[2] for row in section.rows] == ["+0.00", "+2.00", "-1.00"]


def test_accuracy_falls_back_to_best_when_the_reference_has_none():
    runs = [_run("torch", "fp32", 1, 1.0, reference=True), _run("ort", "fp32", 1, 1.0, accuracy=0.97),
            _run("ort", "int8", 1, 1.0, accuracy=0.94)]
    section = next(s for s in sections(_document(runs), {}) if s.title == "Accuracy")
    assert section.headers[2] == "points vs best" and [row[2] for row in section.rows] == ["+0.00", "-3.00"]
    assert "the reference torch:fp32 has no accuracy" in section.text


def test_runs_that_failed_alike_are_one_row_and_name_value_tables_align_left(tmp_path):
    failed = [{**_run("openvino", "int8", b, 1.0), "status": "failed", "error": "needs --data", "latency": None}
              for b in (1, 4, 16)]
    document = _document([_run("ort", "fp32", 1, 1.0), *failed])
    document["environment"]["cpu_cores"] = 2
    section = next(s for s in sections(document, {}) if s.title == "Runs that did not complete")
    assert section.headers == ["engine:precision", "batches", "status", "error"]
    assert section.rows == [["openvino:int8", "1, 4, 16", "failed", "needs --data"]]
    html = write_report(document, tmp_path / "r.html")[0].read_text()
    assert '<tr><td class="text">cpu_cores</td><td class="text">2</td></tr>' in html  # environment: values left
    assert "<td>1</td>" in html  # the runs table: numbers right-aligned


def test_many_series_keep_distinct_colours_and_their_labels():
    runs = [_run(f"e{i}", "fp32", b, 0.1 * (i + 1) * b) for i in range(24) for b in (1, 8)]
    ax = latency_figures(_document(runs))["latency"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"e{i}:fp32" for i in range(24)]
    lines = [container.lines[0] for container in ax.containers]  # errorbar: the data line of each series
    assert len({(tuple(line.get_color()), line.get_linestyle()) for line in lines}) == 24
    assert {line.get_linestyle() for line in lines} == {"-", "--", ":", "-."}
