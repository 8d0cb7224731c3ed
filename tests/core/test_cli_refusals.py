"""Options that cannot work are refused with one error line before any work starts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dk


def _refused(proc, code: int = 2) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_run_all_with_an_unknown_reference_exits_2_before_building(tmp_path):
    line = _refused(run_dk("run", "all", "--plugin", "ort", "--reference", "bogus", "--out", str(tmp_path)))
    assert line.startswith("error: no plugin named 'bogus'")
    assert not (tmp_path / "ort").exists()


def test_run_all_with_a_named_reference_that_cannot_export_is_an_error(tmp_path):
    line = _refused(run_dk("run", "all", "--plugin", "ort", "--reference", "core", "--out", str(tmp_path)))
    assert line.startswith("error: plugin 'core' does not implement stage 'export'")
    assert not (tmp_path / "ort").exists()


def test_a_bench_whose_every_run_was_skipped_says_why_and_exits_1(tmp_path):
    pytest.importorskip("onnxruntime")
    proc = run_dk("run", "bench", "--plugin", "ort", "--static", "--batches", "4,8", "--iterations", "3",
                  "--hw-interval", "0", "--out", str(tmp_path), "--output", str(tmp_path / "r.json"))
    assert _refused(proc, code=1) == ("error: nothing was measured, every run was skipped: ort:fp32 batches 4, 8: "
                                      "the engine has a fixed batch of 1; export without --static")
    assert proc.stdout == ""
    document = json.loads((tmp_path / "r.json").read_text())
    assert [r["status"] for r in document["runs"]] == ["skipped", "skipped"]


@pytest.mark.parametrize("args, expected", [
    (["--duration", "-1"], "error: invalid value for '--duration': -1.0 is not in the range x>0; see 'dk run --help'"),
    (["--duration", "0"], "error: invalid value for '--duration': 0.0 is not in the range x>0; see 'dk run --help'"),
    (["--duration", "nan"], "error: invalid value for '--duration': 'nan' is not a finite number of seconds; "
                            "see 'dk run --help'"),
    (["--hw-interval", "-1"], "error: invalid value for '--hw-interval': -1.0 is not in the range x>=0; "
                              "see 'dk run --help'"),
    (["--max-regression", "5"], "error: --max-regression: '5' would allow 500% worse; write 5% for 5 percent "
                                "(or 0.05 as a fraction)"),
])
def test_timing_and_gate_values_that_cannot_be_meant_are_refused(tmp_path, args, expected):
    assert _refused(run_dk("run", "bench", "--plugin", "ort", *args, "--out", str(tmp_path))) == expected
    assert not (tmp_path / "ort").exists()
