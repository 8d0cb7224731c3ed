"""The tables ``dk run bench`` prints: a size column for --input-sizes, nothing but notes when no run
was measured."""

from __future__ import annotations

from dk.cli.bench_tables import print_tables


def _run(size, status="ok", error=None):
    run = {"engine": "ort", "precision": "fp32", "batch": 1, "status": status, "input_size": [size, size],
           "input_shape": [1, 1, size, size] if status == "ok" else None, "error": error,
           "copies_note": "engine runs on the CPU: no host<->device copies" if status == "ok" else None}
    if status == "ok":
        run["latency"] = {"p50_ms": 0.5, "p90_ms": 0.6, "p99_ms": 0.7, "cv": 0.05, "throughput": 2000.0}
    return run


def _document(runs, sizes):
    return {"runs": runs, "complete": True, "hw": None, "settings": {
        "reference": "ort:fp32", "timed_region": {"preprocess": False, "copies": True}, "input_sizes": sizes}}


def _header(text: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return [c.strip() for c in line.strip("┃").split("┃")]


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")]


def test_an_input_size_sweep_table_has_a_size_column(capsys):
    print_tables(_document([_run(8), _run(16, "failed", "does not fit")], [[8, 8], [16, 16]]), [], 0.05)
    out = capsys.readouterr().out
    header = _header(out)
    assert header[:5] == ["engine", "precision", "size", "batch", "status"]
    assert [row[2] for row in _rows(out)] == ["8x8", "16x16"]


def test_one_size_has_no_size_column(capsys):
    print_tables(_document([_run(8)], []), [], 0.05)
    assert "size" not in _header(capsys.readouterr().out)


def test_no_measured_run_prints_no_table_and_leaves_the_first_failure_to_the_error_line(capsys):
    runs = [_run(8, "failed", "first reason"), _run(16, "failed", "second reason")]
    print_tables(_document(runs, [[8, 8], [16, 16]]), [], 0.05)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert " ".join(captured.err.split()) == "failed: ort:fp32 16x16 batch 1: second reason"


def test_an_engine_on_CPU_in_capitals_has_no_copies():
    from types import SimpleNamespace

    from dk.bench.latency import copies_mode

    assert copies_mode(SimpleNamespace(device="CPU", name="openvino"), include=True) == (
        "none", "engine runs on the CPU: no host<->device copies")


def test_copies_notes_that_differ_name_their_engines(capsys):
    cpu, cuda = _run(8), {**_run(8), "engine": "trt", "copies_note": "inputs uploaded to cuda before the timed region"}
    print_tables(_document([cpu, cuda], []), [], 0.05)
    err = " ".join(capsys.readouterr().err.split())
    assert "copies: ort:fp32: engine runs on the CPU: no host<->device copies" in err
    assert "copies: trt:fp32: inputs uploaded to cuda before the timed region" in err


def test_noisy_runs_are_one_note_naming_the_first_six(capsys):
    runs = [{**_run(8), "batch": b, "latency": {"p50_ms": 1.0, "cv": 0.5, "throughput": 1.0}} for b in range(1, 9)]
    print_tables(_document(runs, []), [], 0.05)
    notes = [line for line in capsys.readouterr().err.replace("\n", " ").split("note:")[1:]]
    assert len(notes) == 1
    assert " ".join(notes[0].split()) == ("8 run(s) vary a lot (cv > 0.2): " + ", ".join(
        f"ort:fp32 batch {b} (cv 0.50)" for b in range(1, 7)) + " and 2 more; the machine may be busy")
