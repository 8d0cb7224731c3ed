"""What ``dk run bench``/``infer``/``compare`` feed a model when no input is given: every input,
at the size it is declared or asked for (``dk.pipeline.eval_data``), never a made-up size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_dk

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

BENCH = ("--iterations", "3", "--warmup", "1", "--hw-interval", "0", "--json")


def dynamic_hw_onnx(path) -> str:
    """``input`` [batch, 3, height, width] -> channel means ``output`` [batch, 3]."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["output"])],
        "pool",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def ok_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_input_size_cell_is_fed_its_own_size(tmp_path):
    model = dynamic_hw_onnx(tmp_path / "pool.onnx")
    result = ok_json(run_dk("run", "bench", "--plugin", "ort", "--model", model, "--input-size", "32",
                            "--input-sizes", "16,24x20", "--out", str(tmp_path / "a"), *BENCH))
    cells = [(r["status"], r["input_size"], r["input_shape"]) for r in result["runs"]]
    assert cells == [("ok", [16, 16], [1, 3, 16, 16]), ("ok", [24, 20], [1, 3, 24, 20])]


def test_dynamic_hw_is_fed_the_shapes_given_when_no_size_is_declared(tmp_path):
    model = dynamic_hw_onnx(tmp_path / "pool.onnx")
    result = ok_json(run_dk("run", "bench", "--plugin", "ort", "--model", model, "--dynamic-hw",
                            "--shapes", "input:1x3x32x32", "--out", str(tmp_path / "a"), *BENCH))
    assert [r["input_shape"] for r in result["runs"]] == [[1, 3, 32, 32]]


def test_an_unsized_dynamic_input_is_refused_rather_than_fed_1x1(tmp_path):
    model = dynamic_hw_onnx(tmp_path / "pool.onnx")
    proc = run_dk("run", "infer", "--plugin", "ort", "--model", model, "--out", str(tmp_path / "a"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "error: input 'input' has dynamic axes ['height', 'width'] (shape ['batch', 3, 'height', 'width']) and "
        "nothing says what size to feed; give it with --shapes input:Nx3xNxN (N: the size) or --input-size HxW")


def test_data_of_another_size_than_the_cell_fails_that_cell_only(tmp_path):
    model = dynamic_hw_onnx(tmp_path / "pool.onnx")
    np.savez(tmp_path / "d.npz", x=np.ones((2, 3, 20, 20), np.float32))
    proc = run_dk("run", "bench", "--plugin", "ort", "--model", model, "--input-sizes", "20,12x14",
                  "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "a"), "--output", str(tmp_path / "r.json"),
                  *BENCH[:-1])
    assert proc.returncode == 1
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert [(r["status"], r["input_shape"]) for r in runs] == [("ok", [1, 3, 20, 20]), ("failed", None)]
    assert runs[1]["error"] == ("the inputs (d.npz) are 20x20, not the 12x14 this --input-sizes cell asks for; "
                                "give --data of that size or leave --input-sizes out")
