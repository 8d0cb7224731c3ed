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
