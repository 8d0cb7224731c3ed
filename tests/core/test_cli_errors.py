"""Mistakes on the command line are one ``error:`` line that names the bad piece and the fix."""

from __future__ import annotations

import pytest

from tests.conftest import run_dk


def _error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_misspelt_plugin_suggests_the_installed_one():
    line = _error(run_dk("run", "export", "--plugin", "ortt"))
    assert line.startswith("error: no plugin named 'ortt'; did you mean 'ort'? Installed plugins: ")
    assert "pip install" not in line


def test_an_unknown_plugin_without_a_close_name_says_how_to_install_it():
    line = _error(run_dk("run", "export", "--plugin", "zzzz"))
    assert line.startswith("error: no plugin named 'zzzz'; installed plugins: ")
    assert line.endswith("Install it (pip install ./plugins/zzzz) or pick another with --plugin")


@pytest.mark.parametrize("args, expected", [
    (["run", "bench", "--plugin", "ort", "--batchs", "3"],
     "error: no such option '--batchs' (did you mean one of: '--batch', '--batches', '--static'?); "
     "see 'dk run --help'"),
    (["report"], "error: missing argument 'RESULTS'; see 'dk report --help'"),
    (["run", "export", "--plugin", "ort", "--calib-size", "0"],
     "error: invalid value for '--calib-size': 0 is not in the range x>=1; see 'dk run --help'"),
    (["nosuch"], "error: no such command 'nosuch'; see 'dk --help'"),
])
def test_click_usage_errors_are_one_line_in_dks_style(args, expected):
    assert _error(run_dk(*args)) == expected


@pytest.mark.parametrize("shapes, expected", [
    ("input:1,1,8,8", "error: --shapes: 'input:1,1,8,8' separates dimensions with ','; write input:1x1x8x8 "
                      "(',' separates inputs)"),
    ("input:1x1x8x8,mask:1,8", "error: --shapes: 'mask:1,8' separates dimensions with ','; write mask:1x8 "
                               "(',' separates inputs)"),
    ("1x1x8x8", "error: --shapes: '1x1x8x8' has no input name; expected NAME:DxDxD with positive integers, "
                "e.g. input:1x3x224x224"),
    ("input:1x0x8x8", "error: --shapes: '0' in 'input:1x0x8x8' is not a positive integer; expected NAME:DxDxD "
                      "with positive integers, e.g. input:1x3x224x224"),
])
def test_a_bad_shape_quotes_the_piece_that_is_wrong(shapes, expected):
    assert _error(run_dk("run", "export", "--plugin", "ort", "--shapes", shapes)) == expected


def test_a_failed_single_bench_is_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    proc = run_dk("run", "bench", "--plugin", "ort", "--shapes", "input:1x3x8x8", "--out", str(tmp_path), "--iterations",
                  "3", "--hw-interval", "0")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: ort:fp32 batch 1 failed: --shapes sets 'input' axis 1 to 3, but the model fixes it to 1"]
