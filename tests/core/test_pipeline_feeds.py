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


def two_input_onnx(path) -> str:
    """``a`` float32 [batch, 4] and ``b`` int64 [batch, 4] -> ``output`` = a + float(b)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["a", "b_float"], ["output"])],
        "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def test_every_input_of_a_two_input_model_is_fed_seeded_random_rows_of_its_dtype(tmp_path):
    from dk.engine import random_inputs
    from dk.specs import TensorSpec

    model = two_input_onnx(tmp_path / "two.onnx")
    result = ok_json(run_dk("run", "infer", "--plugin", "ort", "--model", model, "--batch", "2",
                            "--out", str(tmp_path / "a"), "--json"))

    fed = random_inputs([TensorSpec("a", ("batch", 4), "float32"), TensorSpec("b", ("batch", 4), "int64")],
                        batch=8, seed=0)
    expected = fed["a"][:2] + fed["b"][:2].astype(np.float32)
    np.testing.assert_allclose(np.array(result["values"]["output"], np.float32), expected, rtol=0, atol=0)
    assert fed["b"].dtype == np.int64 and len(np.unique(fed["b"])) > 1


def test_bench_of_a_two_input_model_feeds_both_inputs_at_every_batch(tmp_path):
    model = two_input_onnx(tmp_path / "two.onnx")
    result = ok_json(run_dk("run", "bench", "--plugin", "ort", "--model", model, "--batches", "1,4",
                            "--out", str(tmp_path / "a"), *BENCH))
    assert [(r["status"], r["batch"], r["input_shape"]) for r in result["runs"]] == [
        ("ok", 1, [1, 4]), ("ok", 4, [4, 4])]


def test_npz_of_named_arrays_feeds_a_two_input_model(tmp_path):
    model = two_input_onnx(tmp_path / "two.onnx")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "ab.npz", a=a, b=np.full((3, 4), 10, np.int64), y=np.zeros(3, np.int64))
    result = ok_json(run_dk("run", "infer", "--plugin", "ort", "--model", model, "--data", str(tmp_path / "ab.npz"),
                            "--batch", "3", "--out", str(tmp_path / "o"), "--json"))
    assert result["values"]["output"] == (a + 10).tolist()
    assert result["labels"] == [0, 0, 0]


def test_one_array_x_for_a_two_input_model_says_to_save_one_array_per_input(tmp_path):
    model = two_input_onnx(tmp_path / "two.onnx")
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 4), np.float32))
    proc = run_dk("run", "infer", "--plugin", "ort", "--model", model, "--data", str(tmp_path / "x.npz"),
                  "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {tmp_path / 'x.npz'} holds one input array 'x', but the model takes 2 inputs ('a', 'b'); "
        "save one array per input, by name: np.savez(path, a=..., b=..., y=labels)")


def test_an_image_dataset_for_a_two_input_model_is_refused(tmp_path):
    model = two_input_onnx(tmp_path / "two.onnx")
    (tmp_path / "ds" / "cat").mkdir(parents=True)
    proc = run_dk("run", "infer", "--plugin", "ort", "--model", model, "--data", str(tmp_path / "ds"),
                  "--out", str(tmp_path / "o"), "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == (
        f"--data {tmp_path / 'ds'} is a dataset of images, which feed one input, but the model takes 2 inputs "
        "('a', 'b'); give --data an .npz with one array per input, by name (np.savez(path, a=..., b=..., y=labels))")
