"""``--data PATH`` with every dataset format through the CLI: int8 calibration and evaluation."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dk
from tests.digit_images import class_folder, datatool_folder

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def _values(tree, key):
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(tree, list):
        for v in tree:
            yield from _values(v, key)


@pytest.mark.parametrize("make", [class_folder, datatool_folder], ids=["class-folder", "datatool-json"])
def test_quantize_calibrates_on_the_dataset_and_bench_scores_it(tmp_path, make):
    data = make(tmp_path / "data", 60)
    proc = run_dk("run", "quantize", "--plugin", "ort", "--data", str(data), "--calib-size", "24",
                  "--out", str(tmp_path / "art"), "--json")
    assert proc.returncode == 0, proc.stderr
    artifact = json.loads(proc.stdout)["artifact"]
    assert artifact["precision"] == "int8"
    assert "data[24 of 60, seed 0]" in json.dumps(artifact["options"])
    proc = run_dk("run", "bench", "--plugin", "ort", "--data", str(data), "--iterations", "5", "--warmup", "1",
                  "--out", str(tmp_path / "art"), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "data (60 classification images)" in json.dumps(result)
    # 59 of the first 60 held-out digits are right with the fp32 model (as with the .npz split)
    assert any(isinstance(v, float) and abs(v - 59 / 60) < 1e-9 for v in _values(result, "accuracy"))


def test_bad_data_is_one_error_line(tmp_path):
    (tmp_path / "dataset.json").write_text("{not json")
    proc = run_dk("run", "quantize", "--plugin", "ort", "--data", str(tmp_path), "--out", str(tmp_path / "art"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot parse") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
