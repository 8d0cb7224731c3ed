"""``-o KEY=VALUE`` reaches every engine, ``-o ENGINE:KEY=VALUE`` only ENGINE."""

from __future__ import annotations

import json

from dk.api import options_for
from tests.conftest import run_dk


def test_scoped_keys_reach_only_their_plugin_and_win_over_plain_ones():
    options = {"threads": "2", "ort:threads": "1", "ort:level": "all", "openvino:mode": "throughput"}
    assert options_for("ort", options) == {"threads": "1", "level": "all"}
    assert options_for("openvino", options) == {"threads": "2", "mode": "throughput"}
    assert options_for("torch", options) == {"threads": "2"}


def test_a_sweep_gives_each_engine_its_own_options(tmp_path):
    ok = run_dk("run", "bench", "--plugins", "ort,onnxref", "-o", "ort:level=basic", "-o", "ort:threads=1",
                "--iterations", "5", "--hw-interval", "0", "--out", str(tmp_path), "--json")
    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert [r["status"] for r in document["runs"]] == ["ok", "ok"]  # onnxref, which takes no options, saw none
    manifest = json.loads((tmp_path / "ort" / "v1.0_digitsnet_default_8x8_fp32" / "dk.json").read_text())
    assert manifest["options"]["options"] == {"level": "basic"}  # threads is a load option: not in the build
    bad = run_dk("run", "bench", "--plugins", "ort,onnxref", "-o", "ort:level=bogus", "--iterations", "5",
                 "--hw-interval", "0", "--out", str(tmp_path / "b"))
    assert bad.returncode == 1 and "ort:fp32 batch 1: option level=bogus is not one of" in bad.stderr


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_prefix_that_names_no_plugin_of_the_run_is_refused_with_a_suggestion(tmp_path):
    line = _one_error_line(run_dk("run", "bench", "--plugin", "ort", "-o", "ortt:level=all", "--out", str(tmp_path)))
    assert line == "error: -o ortt:level=all: 'ortt' is not a plugin of this run (ort); did you mean 'ort:level'?"
    assert not (tmp_path / "ort").exists()


def test_a_prefix_naming_an_installed_plugin_outside_the_run_is_refused(tmp_path):
    line = _one_error_line(run_dk("run", "export", "--plugin", "ort", "-o", "openvino:mode=throughput",
                                  "--out", str(tmp_path)))
    assert line == ("error: -o openvino:mode=throughput: 'openvino' is not a plugin of this run (ort); "
                    "give the prefix of one of them, or none")


def test_run_all_counts_its_reference_as_a_plugin_of_the_run(tmp_path):
    line = _one_error_line(run_dk("run", "all", "--plugin", "ort", "-o", "trch:threads=1", "--out", str(tmp_path)))
    assert line.endswith("'trch' is not a plugin of this run (ort, torch); did you mean 'torch:threads'?")


def test_unknown_keys_are_refused_by_the_onnxref_example_plugin(tmp_path):
    line = _one_error_line(run_dk("run", "export", "--plugin", "onnxref", "-o", "bogus=1", "--out", str(tmp_path)))
    assert line.startswith("error: unknown onnxref option(s) bogus; valid options are output_names: ")
    assert not (tmp_path / "onnxref").exists()


def test_check_option_scopes_lets_plain_and_matching_keys_pass():
    from dk.cli.options import check_option_scopes

    check_option_scopes({"threads": "1", "ort:level": "all", "torch:threads": "2"}, ["ort", "torch", None])
