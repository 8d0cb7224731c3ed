"""``dk run quantize --max-accuracy-drop`` and ``dk debug layers`` on ort, with real quantizations."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dk.artifacts import Artifact, sha256_json
from dk.debug.mixed_precision import choose_float_nodes, parse_budget
from dk.debug.sensitivity import Trial
from dk.default_model import ONNX_PATH, load_split
from dk.errors import DkError, UsageError
from tests.conftest import run_dk

pytest.importorskip("onnxruntime")


def test_budgets_are_points_or_relative():
    assert (parse_budget("1%").value, parse_budget("1%").relative) == (0.01, False)
    assert parse_budget("0.02").value == 0.02
    assert parse_budget("1e-2").value == parse_budget("1.e-2").value == 0.01
    assert parse_budget(".5%").value == 0.005
    assert parse_budget("2%rel").relative and parse_budget("2%rel").allowed(0.5) == pytest.approx(0.01)
    for bad in ("", "abc", "-1%", "100%", "1e", "e-2", "."):
        with pytest.raises(UsageError, match="--max-accuracy-drop"):
            parse_budget(bad)


class FakeEvaluator:
    """Accuracy = fp32 minus the cost of each quantized node (costs by node)."""

    def __init__(self, costs):
        self.costs, self.fp32_accuracy, self.tried = costs, 0.9, []

    def trial(self, float_nodes):
        self.tried.append(sorted(float_nodes))
        accuracy = self.fp32_accuracy - sum(c for n, c in self.costs.items() if n not in float_nodes)
        return Trial(tuple(sorted(float_nodes)), accuracy, 0.0, 1.0, "")


def test_greedy_then_pruned_keeps_the_fewest_float_nodes():
    costs = {"a": 0.05, "b": 0.001, "c": 0.03, "d": 0.002}
    chosen = choose_float_nodes(FakeEvaluator(costs), parse_budget("1%"), ["a", "c", "d", "b"])
    assert chosen.float_nodes == ("a", "c")


def test_a_budget_that_cannot_be_met_says_so():
    evaluator = FakeEvaluator({"a": 0.05})
    evaluator.trial = lambda nodes: Trial(tuple(nodes), 0.5, 0.0, 1.0, "")  # even all-float loses 0.4
    with pytest.raises(DkError, match="cannot be met even with every node in float.*nothing was written"):
        choose_float_nodes(evaluator, parse_budget("1%"), ["a"], ["relu"])


def test_other_nodes_join_when_weighted_ones_are_not_enough():
    costs = {"conv": 0.001, "relu": 0.05, "pool": 0.001}
    chosen = choose_float_nodes(FakeEvaluator(costs), parse_budget("1%"), ["conv"], ["relu", "pool"])
    assert chosen.float_nodes == ("relu",)


def test_max_accuracy_drop_fits_the_budget_and_records_float_nodes(tmp_path):
    result = run_dk("run", "quantize", "--plugin", "ort", "--max-accuracy-drop", "0.1%", "--json",
                    "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accuracy_int8_full"] < report["accuracy_fp32"] - 0.001  # plain int8 loses more than the budget
    assert report["drop"] <= 0.001 and report["float_nodes"]
    artifact = Artifact.load(report["artifact"]["path"])
    mixed = artifact.manifest["extra"]["mixed_precision"]
    assert mixed["float_nodes"] == report["float_nodes"] == artifact.manifest["extra"]["float_nodes"]
    assert artifact.manifest["options"]["exclude_nodes"] == report["float_nodes"]
    # the recorded accuracy is what the artifact really scores
    from dk import api

    x, y = load_split("eval")
    with api.load_engine("ort", artifact) as engine:
        logits = engine.infer({"input": x})["logits"]
    assert float((logits.argmax(1) == y).mean()) == pytest.approx(mixed["accuracy"])
    assert report["speed"]["median_ms"]["mixed"] > 0 and report["speed"]["speedup_mixed"] > 0
    # the ranking has every weighted node of the default model
    assert sorted(r["node"] for r in report["ranking"]) == sorted(
        ["/features/features.0/Conv", "/features/features.2/Conv", "/features/features.5/Conv", "/classifier/Gemm"])


def test_max_accuracy_drop_without_labels_names_data(tmp_path):
    model = tmp_path / "plain.onnx"
    shutil.copy(ONNX_PATH, model)
    result = run_dk("run", "quantize", "--plugin", "ort", "--model", str(model), "--max-accuracy-drop", "1%",
                    "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "--data" in result.stderr and result.stderr.count("\n") == 1
    assert not list((tmp_path / "out").glob("ort/*"))


def test_exclude_nodes_must_name_nodes_of_the_model(tmp_path):
    result = run_dk("run", "quantize", "--plugin", "ort", "-o", "exclude_nodes=/no/such/Conv", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "exclude_nodes: no node named /no/such/Conv" in result.stderr


def test_layers_ranks_every_weighted_node(tmp_path):
    data = tmp_path / "eval.npz"
    x, y = load_split("eval")
    np.savez(data, x=x[:120], y=y[:120])
    result = run_dk("debug", "layers", "--plugin", "ort", "--json", "--data", str(data))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["layers"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["mean_rel"] for r in rows] == sorted(r["mean_rel"] for r in rows)
    assert len({r["node"] for r in rows}) == 4
    # keeping the most sensitive node in float moves the output less from fp32 than all in int8
    assert rows[0]["mean_rel"] < report["mean_rel_int8"]
    assert report["samples"] == 120 and 0 < report["accuracy_int8"] <= 1
    assert report["schema"] == "dk.debug.layers/1"
    pytest.importorskip("matplotlib")
    # the same document charted by ``dk report``: every node in the table, the chart embedded
    layers_json = tmp_path / "layers.json"
    layers_json.write_text(result.stdout)
    charted = run_dk("report", str(layers_json), "-o", str(tmp_path / "layers.html"))
    assert charted.returncode == 0, charted.stderr
    text = (tmp_path / "layers.html").read_text()
    assert "Per-layer int8 sensitivity" in text and "data:image/png;base64," in text
    assert all(r["node"] in text for r in rows)


def test_openvino_keeps_excluded_nodes_in_float(tmp_path):
    pytest.importorskip("nncf")
    full = run_dk("run", "quantize", "--plugin", "openvino", "--json", "--out", str(tmp_path / "a"))
    mixed = run_dk("run", "quantize", "--plugin", "openvino", "--json", "--out", str(tmp_path / "b"),
                   "-o", "exclude_nodes=/features/features.5/Conv,/classifier/Gemm")
    assert full.returncode == 0 and mixed.returncode == 0, mixed.stderr
    full_extra = Artifact.load(json.loads(full.stdout)["artifact"]["path"]).manifest["extra"]
    mixed_extra = Artifact.load(json.loads(mixed.stdout)["artifact"]["path"]).manifest["extra"]
    assert mixed_extra["float_nodes"] == ["/classifier/Gemm", "/features/features.5/Conv"]
    mixed_options = Artifact.load(json.loads(mixed.stdout)["artifact"]["path"]).manifest["options"]
    assert mixed_options["exclude_nodes"] == mixed_extra["float_nodes"]  # where ort records them too
    assert "exclude_nodes" not in Artifact.load(json.loads(full.stdout)["artifact"]["path"]).manifest["options"]
    assert mixed_extra["fake_quantize_nodes"] < full_extra["fake_quantize_nodes"]
    assert json.loads(mixed.stdout)["artifact"]["name"] == json.loads(full.stdout)["artifact"]["name"] + (
        f"_float2-{sha256_json(mixed_extra['float_nodes'])[:8]}")
    bad = run_dk("run", "quantize", "--plugin", "openvino", "-o", "exclude_nodes=/nope", "--out", str(tmp_path / "c"))
    assert bad.returncode != 0 and "exclude_nodes: no node named /nope" in bad.stderr


def test_trt_qdq_onnx_keeps_excluded_nodes_in_float(tmp_path):
    """The Q/DQ ONNX that trt's int8 builds from (no TensorRT needed to make it): float nodes stay float."""
    pytest.importorskip("dk_trt")
    from dk.default_model import load_split as split
    from dk.specs import ModelSource, QuantizeRequest
    from dk_trt.quantize import ptq_source

    x, _ = split("calib")
    request = QuantizeRequest(source=ModelSource("default", "dk:digitsnet"), out_dir=tmp_path, calibration=lambda: [
        {"input": x[:32]}], calibration_name="calib[:32]", options={"exclude_nodes": "/classifier/Gemm"})
    artifact = Artifact.load(ptq_source(request).location)
    assert artifact.manifest["extra"]["float_nodes"] == ["/classifier/Gemm"]
    assert artifact.manifest["options"]["activations"] == "int8"
    from dk_trt.export import source_float_nodes

    assert artifact.name.endswith(f"_int8_float1-{sha256_json(['/classifier/Gemm'])[:8]}")
    assert source_float_nodes(ModelSource("artifact", str(artifact.path))) == ["/classifier/Gemm"]
    import onnx

    graph = onnx.load(str(artifact.model_file)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    conv = next(n for n in graph.node if n.op_type == "Conv")
    assert producers.get(gemm.input[1]) != "DequantizeLinear"  # float weights
    assert producers.get(conv.input[1]) == "DequantizeLinear"  # int8 weights elsewhere


def test_layers_report_has_the_chart_and_every_node(tmp_path):
    pytest.importorskip("matplotlib")
    from dk.report.sensitivity import write_sensitivity_report

    report = {"plugin": "ort", "mode": "only this node in float", "samples": 10, "data": "d", "accuracy_fp32": 0.9,
              "accuracy_int8": 0.8, "mean_rel_int8": 0.05, "layers": [
                  {"rank": 1, "node": "/a/Conv", "op": "Conv", "accuracy": 0.9, "mean_rel": 0.01, "cosine": 0.999},
                  {"rank": 2, "node": "/b/Gemm", "op": "Gemm", "accuracy": 0.85, "mean_rel": 0.04, "cosine": 0.99}]}
    html_file, = write_sensitivity_report(report, tmp_path / "layers.html")
    text = html_file.read_text()
    assert "data:image/png;base64," in text and "/a/Conv" in text and "/b/Gemm" in text
    md_file, png = write_sensitivity_report(report, tmp_path / "layers.md")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.name in md_file.read_text()


def test_a_second_run_for_the_same_budget_reuses_the_artifact_and_its_choice(tmp_path):
    first = run_dk("run", "quantize", "--plugin", "ort", "--max-accuracy-drop", "0.1%", "--json",
                   "--out", str(tmp_path / "out"))
    assert first.returncode == 0, first.stderr
    second = run_dk("run", "quantize", "--plugin", "ort", "--max-accuracy-drop", "0.1%", "--json",
                    "--out", str(tmp_path / "out"))
    assert second.returncode == 0, second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (one["artifact"]["reused"], one["searched"]) == (False, True)
    assert (two["artifact"]["reused"], two["searched"]) == (True, False)
    assert two["float_nodes"] == one["float_nodes"] and two["accuracy"] == one["accuracy"]
    assert two["trials"] == 2  # all int8, and the reused artifact scored again: no ranking, no search
    assert two["artifact"]["path"] == one["artifact"]["path"]
    manifest = Artifact.load(two["artifact"]["path"]).manifest
    assert manifest["extra"]["mixed_precision"]["searched"] is False


def test_a_plain_quantize_reusing_a_budget_artifact_drops_its_record(tmp_path):
    # a budget that full int8 meets: the chosen artifact is the plain int8 one, with the record
    budget = run_dk("run", "quantize", "--plugin", "ort", "--max-accuracy-drop", "50%", "--json",
                    "--out", str(tmp_path / "out"))
    assert budget.returncode == 0, budget.stderr
    report = json.loads(budget.stdout)
    assert report["float_nodes"] == [] and "mixed_precision" in report["artifact"]["extra"]
    plain = run_dk("run", "quantize", "--plugin", "ort", "--json", "--out", str(tmp_path / "out"))
    assert plain.returncode == 0, plain.stderr
    artifact = json.loads(plain.stdout)["artifact"]
    assert artifact["reused"] and artifact["path"] == report["artifact"]["path"]
    assert "mixed_precision" not in artifact["extra"]
    assert "mixed_precision" not in Artifact.load(artifact["path"]).manifest["extra"]


def test_a_failed_budget_counts_the_nodes_without_a_name():
    evaluator = FakeEvaluator({"a": 0.05})
    evaluator.trial = lambda nodes: Trial(tuple(nodes), 0.5, 0.0, 1.0, "")
    with pytest.raises(DkError) as caught:
        choose_float_nodes(evaluator, parse_budget("1%"), ["a"], ["relu"], unnamed=2)
    assert str(caught.value) == (
        "the budget 1% (accuracy points (absolute)) cannot be met with every named node (2) in float: accuracy "
        "0.5000 vs fp32 0.9000; 2 node(s) without a name could not be tried in float (exclude_nodes names nodes: "
        "give them names in the ONNX graph); nothing was written")


def test_unnamed_nodes_are_counted_in_the_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from dk.debug.sensitivity import Evaluator, unnamed_nodes
    from dk.pipeline import BuildOptions

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="named"), helper.make_node("Neg", ["a"], ["b"]),
         helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
         helper.make_node("Add", ["b", "c"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert unnamed_nodes(Evaluator("ort", BuildOptions(model=str(path)), tmp_path)) == 2


def test_an_empty_budget_is_refused_not_ignored(tmp_path):
    result = run_dk("run", "quantize", "--plugin", "ort", "--max-accuracy-drop", "", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: --max-accuracy-drop '': give points like 1%")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--plugin", "ort", "--report", "x.pdf"], "error: --report x.pdf: the report must end in .html or .md\n"),
    (["--plugin", "onnxref"], "error: plugin 'onnxref' has no int8 precision (it builds fp32); dk debug layers "
                              "measures int8 only: choose another plugin (plugins with int8: "),
])
def test_layers_usage_errors_name_its_own_flags(tmp_path, args, message):
    result = run_dk("debug", "layers", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "out").exists()


def test_the_layers_table_heads_its_node_column_node(tmp_path):
    data = tmp_path / "eval.npz"
    x, y = load_split("eval")
    np.savez(data, x=x[:40], y=y[:40])
    result = run_dk("debug", "layers", "--plugin", "ort", "--data", str(data), env_extra={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "rank" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")][:3] == ["rank", "node", "op"]


def test_a_budget_artifact_and_the_plain_int8_one_keep_their_own_folders(tmp_path):
    """Float nodes name the folder (``_float<N>-<digest>``): neither build replaces the other in --out."""
    out = str(tmp_path / "out")

    def quantize(*extra):
        result = run_dk("run", "quantize", "--plugin", "ort", "--json", "--out", out, *extra)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    budget, plain = quantize("--max-accuracy-drop", "0.1%"), quantize()
    nodes = budget["float_nodes"]
    assert len(nodes) >= 1
    assert plain["artifact"]["path"].endswith("/v1.0_digitsnet_default_8x8_int8")
    assert budget["artifact"]["path"] == plain["artifact"]["path"] + f"_float{len(nodes)}-" + (
        sha256_json(sorted(nodes))[:8])
    again_budget, again_plain = quantize("--max-accuracy-drop", "0.1%"), quantize()
    assert (again_budget["artifact"]["reused"], again_budget["searched"]) == (True, False)
    assert again_plain["artifact"]["reused"] is True
    assert again_budget["artifact"]["path"] == budget["artifact"]["path"]
    assert again_plain["artifact"]["path"] == plain["artifact"]["path"]
    assert Artifact.load(again_budget["artifact"]["path"]).manifest["extra"]["float_nodes"] == nodes
    assert "float_nodes" not in Artifact.load(again_plain["artifact"]["path"]).manifest["extra"]


def test_float_nodes_suffix_counts_and_digests_the_sorted_names():
    from dk.artifacts import float_nodes_suffix

    assert float_nodes_suffix([]) == ""
    assert float_nodes_suffix(["/b", "/a"]) == float_nodes_suffix(["/a", "/b", "/a"]) == (
        f"float2-{sha256_json(['/a', '/b'])[:8]}")
