"""Options that cannot work are refused with one error line before any work starts."""

from __future__ import annotations

import json
from pathlib import Path

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


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("int8")
    proc = run_dk("run", "quantize", "--plugin", "ort", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["artifact"]["path"]


@pytest.mark.parametrize("args, expected", [
    (["bench", "--plugin", "ort", "--plugins", "openvino"],
     "error: --plugin ort and --plugins openvino both say what to run; give --plugin NAME for one engine or "
     "--plugins A,B for several"),
    (["bench", "--plugin", "ort", "--precision", "int8", "--precisions", "fp32"],
     "error: --precision int8 and --precisions fp32 both say what to run; give --precision P for one or "
     "--precisions P,Q for several"),
    (["all", "--plugin", "ort", "--precision", "int8"],
     "error: --precision does nothing in 'dk run all' (dk run all builds and compares fp32 and int8 itself); "
     "drop it"),
    (["all", "--plugin", "ort", "--duration", "2"],
     "error: --duration does nothing in 'dk run all' (it is an option of dk run bench); drop it"),
    (["export", "--plugin", "ort", "--output", "x.json"],
     "error: --output does nothing in 'dk run export' (it is an option of dk run infer and dk run bench); drop it"),
    (["export", "--plugin", "ort", "--simplify"],
     "error: --simplify: only the torch exporter simplifies, and the model here is the embedded ONNX model; drop "
     "--simplify, or simplify the ONNX file yourself first (onnxslim in.onnx out.onnx)"),
    (["export", "--plugin", "ort", "--opset", "13"],
     "error: --opset 13: the opset applies to torch exports only, and the model here is the embedded ONNX model, "
     "which keeps its own opset; drop --opset (convert the file yourself to change it)"),
    (["bench", "--plugins", "ort,openvino", "--opset", "99"],
     "error: --opset 99: the opset applies to torch exports only, and the model here is the embedded ONNX model, "
     "which keeps its own opset; drop --opset (convert the file yourself to change it)"),
    (["bench", "--plugins", "ort,,openvino"],
     "error: --plugins: 'ort,,openvino' has an empty entry; write the list without it (ort,openvino)"),
    (["bench", "--plugin", "ort", "--batches", "1,"], "error: --batches: '1,' has an empty entry; write the list "
                                                       "without it (1)"),
])
def test_options_that_conflict_or_do_nothing_are_refused(tmp_path, args, expected):
    assert _refused(run_dk("run", *args, "--out", str(tmp_path))) == expected
    assert list(tmp_path.iterdir()) == []


SIMPLIFY_REFUSED = ("error: --simplify: only the torch exporter simplifies, and the model here is the embedded ONNX "
                    "model; drop --simplify, or simplify the ONNX file yourself first (onnxslim in.onnx out.onnx)")

OPSET_REFUSED = ("error: --opset 13: the opset applies to torch exports only, and the model here is the embedded ONNX "
                 "model, which keeps its own opset; drop --opset (convert the file yourself to change it)")


@pytest.mark.parametrize("args, expected", [
    (["compare", "--plugins", "ort,ort:int8", "--simplify"], SIMPLIFY_REFUSED),
    (["debug", "diverge", "--plugins", "onnxref,ort", "--simplify"], SIMPLIFY_REFUSED),
    (["debug", "layers", "--plugin", "ort", "--simplify"], SIMPLIFY_REFUSED),
    (["compare", "--plugins", "ort,openvino", "--opset", "13"], OPSET_REFUSED),
    (["debug", "diverge", "--plugins", "onnxref,ort", "--opset", "13"], OPSET_REFUSED),
    (["debug", "layers", "--plugin", "ort", "--opset", "13"], OPSET_REFUSED),
    (["debug", "layers", "--plugin", "ort", "--force"],
     "error: --force does nothing in 'dk debug layers' (every quantization is built afresh in a temp folder); "
     "drop it"),
    (["debug", "layers", "--plugin", "ort", "--artifact", "any-folder"],
     "error: --artifact does nothing in 'dk debug layers' (it quantizes the original model once per weighted node; "
     "give --model instead); drop it"),
])
def test_compare_and_debug_refuse_what_dk_run_refuses(tmp_path, args, expected):
    assert _refused(run_dk(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)) == expected
    assert list(tmp_path.iterdir()) == []  # nothing built, no dk-debug folder either


def test_diverge_takes_simplify_when_torch_exports_the_graph():
    from dk.cli.debug import graph_exporters

    assert graph_exporters([("torch", "fp32"), ("ort", "int8")]) == ["torch"]
    assert graph_exporters([("onnxref", "fp32"), ("ort", "int8")]) == ["onnxref", "ort"]


@pytest.mark.parametrize("stage, what", [("infer", "--precision fp16"), ("bench", "ort:fp16")])
def test_a_precision_that_is_not_the_artifacts_is_refused(tmp_path, int8_artifact, stage, what):
    line = _refused(run_dk("run", stage, "--plugin", "ort", "--precision", "fp16", "--artifact", int8_artifact))
    assert line == (f"error: {what}: the artifact {int8_artifact} is int8 and is used as it is; ask for int8 "
                    "(or give no precision), or give a fp16 artifact")


def test_a_bench_of_an_artifact_records_the_artifacts_precision(int8_artifact):
    proc = run_dk("run", "bench", "--plugin", "ort", "--artifact", int8_artifact, "--iterations", "3",
                  "--hw-interval", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert (document["precision"], document["runs"][0]["precision"]) == ("int8", "int8")


@pytest.mark.parametrize("refused, advised", [
    (["export", "--plugin", "torch", "--precision", "fp16"], ["export", "--plugin", "ort", "--precision", "fp16"]),
    (["quantize", "--plugin", "ort", "--precision", "fp16"], ["export", "--plugin", "ort", "--precision", "fp16"]),
    (["quantize", "--plugin", "ort", "--precision", "fp32"], ["export", "--plugin", "ort", "--precision", "fp32"]),
])
def test_the_command_a_refusal_advises_works(tmp_path, refused, advised):
    pytest.importorskip("onnxruntime")
    line = _refused(run_dk("run", *refused, "--out", str(tmp_path)))
    assert f"dk run {' '.join(advised)}" in line
    proc = run_dk("run", *advised, "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["artifact"]["precision"] == advised[-1]


def test_input_sizes_of_a_torch_model_without_a_shape_say_which_option_gives_it(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "tinynet.py").write_text(
        "import torch\n\n\ndef make():\n    return torch.nn.Conv2d(3, 4, 3)\n")
    line = _refused(run_dk("run", "bench", "--plugin", "ort", "--model", "tinynet:make", "--input-sizes", "16,24x20",
                           "--out", str(tmp_path / "out"), cwd=tmp_path))
    assert line == ("error: --input-sizes: the torch-callable model tinynet:make needs its input shape once to "
                    "re-export it at each size: add --input-size 16x16 (or --shapes input:1x3x16x16)")
    assert not (tmp_path / "out").exists()


def test_the_infer_table_shows_scores_with_four_decimals(tmp_path):
    pytest.importorskip("onnxruntime")
    proc = run_dk("run", "infer", "--plugin", "ort", "--batch", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    scores = [line.split("│")[3].strip() for line in proc.stdout.splitlines() if line.startswith("│")]
    assert len(scores) == 2 and all(len(s.split(".")[1]) == 4 for s in scores), scores


def test_a_precision_refusal_in_compare_names_no_option_compare_lacks():
    line = _refused(run_dk("compare", "--plugins", "torch,onnxref:int8"))
    assert "(--precision, or onnxref:PRECISION in --plugins)" in line


def relu_onnx(path, opset: int) -> str:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "relu",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return str(path)


def test_opset_on_an_onnx_file_is_refused_and_none_is_recorded_without_it(tmp_path):
    model = relu_onnx(tmp_path / "relu13.onnx", 13)
    out = tmp_path / "out"

    line = _refused(run_dk("run", "export", "--plugin", "ort", "--model", model, "--opset", "99", "--out", str(out)))
    assert line == ("error: --opset 99: the opset applies to torch exports only, and the model here is an ONNX "
                    "file, which keeps its own opset; drop --opset (convert the file yourself to change it)")
    assert not out.exists()

    proc = run_dk("run", "export", "--plugin", "ort", "--model", model, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((Path(json.loads(proc.stdout)["artifact"]["path"]) / "dk.json").read_text())
    assert manifest["options"]["opset"] is None  # the file's opset 13 stands; 17 would be false
