"""``dk debug diverge``: bisection names exactly the node a test engine breaks, on real engines."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from dk.debug.diverge import diverge
from dk.debug.graph import candidate_nodes
from dk.default_model import ONNX_PATH
from dk.pipeline import BuildOptions
from dk.plugins import get_plugin_manager
from tests.conftest import make_distribution, run_dk
from tests.processes import INTERRUPTIBLE

import tests.core.broken_engine_plugin as broken_plugin

pytest.importorskip("onnxruntime")
BROKEN_SOURCE = Path(broken_plugin.__file__).read_text()
NODES = [n.name for n in candidate_nodes(onnx.load(str(ONNX_PATH)))]


@pytest.fixture
def broken(monkeypatch):
    """The ``broken`` engine registered in this process."""
    broken_plugin.EXPORTS.clear()
    get_plugin_manager().register(broken_plugin, "broken")
    return broken_plugin


@pytest.mark.parametrize("per_build", [1, 3])
@pytest.mark.parametrize("node", [NODES[0], NODES[3], NODES[5], NODES[-1]])
def test_bisection_names_exactly_the_broken_node(broken, tmp_path, node, per_build):
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": node})
    result = diverge([("ort", "fp32"), ("broken", "fp32")], opts, per_build=per_build,
                     subgraph=tmp_path / "culprit.onnx")
    report = result.to_json()
    assert report["status"] == "found"
    assert report["culprit"]["name"] == node
    assert report["builds"] <= math.ceil(math.log2(len(NODES))) + 2
    # the offset of 0.5 is what the engine adds there
    assert report["culprit"]["error"]["max_abs"] == pytest.approx(0.5, abs=1e-4)
    if node != NODES[0]:
        assert report["last_good"] == NODES[NODES.index(node) - 1]
        assert report["last_good_error"]["passed"]
    culprit = onnx.load(str(tmp_path / "culprit.onnx"))
    assert [o.name for o in culprit.graph.output] == [report["culprit"]["tensor"]]
    assert len(culprit.graph.node) == NODES.index(node) + 1  # the chain up to the broken node, no more


def _save(tmp_path: Path, name: str, nodes: list, weights: dict) -> Path:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _matmuls(names: list[str], first_input: str) -> tuple[list, dict]:
    """A chain of MatMul nodes named ``names``, each output named after its node."""
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(0)
    nodes, weights, previous = [], {}, first_input
    for name in names:
        weights[f"W_{name}"] = rng.standard_normal((8, 8)) / 3
        nodes.append(helper.make_node("MatMul", [previous, f"W_{name}"], [name], name=name))
        previous = name
    return nodes, weights


def branch_model(tmp_path: Path) -> Path:
    """Branch A (3 nodes) first in the file, then the longer branch B (8 nodes), then y = A + B:
    the nodes of B agree whatever is broken in A, and come after it in topological order."""
    from onnx import helper

    a_nodes, a_weights = _matmuls(["A0", "A1", "A2"], "x")
    b_nodes, b_weights = _matmuls([f"B{k}" for k in range(8)], "x")
    return _save(tmp_path, "branch", [*a_nodes, *b_nodes, helper.make_node("Add", ["A2", "B7"], ["y"], name="OUT")],
                 {**a_weights, **b_weights})


def residual_model(tmp_path: Path) -> Path:
    """Two residual blocks whose shortcut (4 nodes) is computed after the main path (2 nodes), as
    torch exports ``main(x) + shortcut(x)``."""
    from onnx import helper

    nodes, weights, previous = [], {}, "x"
    for block in range(2):
        main, main_weights = _matmuls([f"R{block}_main{k}" for k in range(2)], previous)
        short, short_weights = _matmuls([f"R{block}_short{k}" for k in range(4)], previous)
        out = "y" if block == 1 else f"R{block}_add"
        nodes += [*main, *short, helper.make_node("Add", [main[-1].output[0], short[-1].output[0]], [out],
                                                  name=f"R{block}_add")]
        weights.update({**main_weights, **short_weights})
        previous = out
    return _save(tmp_path, "residual", nodes, weights)


@pytest.mark.parametrize("per_build", [1, 2, 3, 5])
@pytest.mark.parametrize("graph,node", [("branch", "A0"), ("branch", "A1"), ("branch", "A2"), ("branch", "B2"),
                                        ("residual", "R0_main1"), ("residual", "R0_short0"),
                                        ("residual", "R1_main0"), ("residual", "R1_add")])
def test_a_broken_node_before_an_agreeing_branch_is_named(broken, tmp_path, graph, node, per_build):
    model = (branch_model if graph == "branch" else residual_model)(tmp_path)
    opts = BuildOptions(model=str(model), out=tmp_path / "a", options={"broken:node": node})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, per_build=per_build).to_json()
    assert (report["status"], report["culprit"]["name"]) == ("found", node)
    assert report["culprit"]["error"]["max_abs"] == pytest.approx(0.5, abs=1e-4)
    names = [n.name for n in candidate_nodes(onnx.load(str(model)))]
    assert report["last_good"] == (names[names.index(node) - 1] if names.index(node) else None)
    assert report["builds"] <= math.ceil(math.log2(len(names))) + 2


def test_prefix_subgraphs_find_the_same_node(broken, tmp_path):
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[5]})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, prefix=True).to_json()
    assert (report["status"], report["mode"], report["culprit"]["name"]) == ("found", "prefix", NODES[5])


def two_input_model(tmp_path: Path) -> Path:
    """``y = A(x) + B(z)``: two inputs, each with its own chain, so a cut on one chain leaves the
    other input unused by every node of the cut."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    a_nodes, a_weights = _matmuls(["A0", "A1", "A2"], "x")
    b_nodes, b_weights = _matmuls(["B0", "B1", "B2"], "z")
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 8]) for name in ("x", "z")]
    graph = helper.make_graph([*a_nodes, *b_nodes, helper.make_node("Add", ["A2", "B2"], ["y"], name="OUT")], "two",
                              inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k)
                               for k, v in {**a_weights, **b_weights}.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("prefix", [False, True])
@pytest.mark.parametrize("node", ["A1", "B0", "B2"])
def test_a_two_input_model_is_bisected_with_both_inputs_fed_to_every_cut(broken, tmp_path, node, prefix):
    model = two_input_model(tmp_path)
    opts = BuildOptions(model=str(model), out=tmp_path / "a", options={"broken:node": node})
    subgraph = tmp_path / "culprit.onnx"
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, prefix=prefix, subgraph=subgraph).to_json()
    assert (report["status"], report["mode"], report["culprit"]["name"]) == \
        ("found", "prefix" if prefix else "marked", node)
    assert report["culprit"]["error"]["max_abs"] == pytest.approx(0.5, abs=1e-4)
    culprit = onnx.load(str(subgraph))
    # every graph input is kept, used or not, so the same feeds run every cut
    assert [i.name for i in culprit.graph.input] == ["x", "z"]
    assert [n.name for n in culprit.graph.node] == {"A1": ["A0", "A1"], "B0": ["B0"], "B2": ["B0", "B1", "B2"]}[node]


def test_an_engine_that_drops_marked_outputs_gets_prefix_subgraphs(broken, tmp_path):
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[4], "broken:first_output_only": "1"})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts).to_json()
    assert (report["status"], report["mode"], report["culprit"]["name"]) == ("found", "prefix", NODES[4])


def test_mark_all_finds_the_same_node_in_one_build(broken, tmp_path):
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[3]})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, mark_all=True).to_json()
    assert (report["culprit"]["name"], report["builds"]) == (NODES[3], 1)
    assert len(report["steps"][0]["marked"]) == len(NODES)


def _site(tmp_path: Path) -> dict[str, str]:
    site = make_distribution(tmp_path / "site", "dk-test-broken", {"broken": BROKEN_SOURCE})
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_json_names_the_node_and_exits_1(tmp_path):
    result = run_dk("debug", "diverge", "--plugins", "ort,broken", "-o", f"broken:node={NODES[2]}", "--json",
                    "--out", str(tmp_path / "a"), "--subgraph", str(tmp_path / "c.onnx"), env_extra=_site(tmp_path))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["culprit"]["name"] == NODES[2] and report["culprit"]["op"] == "Conv"
    assert report["culprit"]["inputs"][0]["shape"] == ["batch", 16, 8, 8]
    assert report["subgraph"] == str(tmp_path / "c.onnx") and (tmp_path / "c.onnx").is_file()
    assert [s["step"] for s in report["steps"]] == list(range(1, report["builds"] + 1))


def test_engines_that_agree_say_so_and_exit_0(tmp_path):
    result = run_dk("debug", "diverge", "--plugins", "onnxref,ort", "--out", str(tmp_path / "a"),
                    "--subgraph", str(tmp_path / "c.onnx"))
    assert result.returncode == 0, result.stderr
    assert "no divergence beyond tolerance" in result.stdout
    assert not (tmp_path / "c.onnx").exists()


def test_ctrl_c_prints_what_was_found_so_far(tmp_path):
    block = tmp_path / "blocked"
    env = {**os.environ, **_site(tmp_path), "DK_TEST_BLOCK_FILE": str(block)}
    env.pop("DK_LOAD_PLUGINS", None)
    # the broken node is the 6th: build 1 marks nodes 3, 6 and 8, so build 2 runs with a known range
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTIBLE + "import sys; from dk.cli import main; sys.exit(main())", "debug", "diverge",
         "--plugins", "ort,broken", "-o", f"broken:node={NODES[5]}", "--out", str(tmp_path / "a"),
         "--subgraph", str(tmp_path / "c.onnx")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:  # progress lines, until the plugin blocks in the second build
            if line.startswith("broken: blocked"):
                break
        assert block.exists(), "the second build never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert f"interrupted after 1 build(s): the first divergence lies after {NODES[2]}" in out
    assert f"at or before {NODES[5]}" in out
    assert not (tmp_path / "c.onnx").exists()


def test_torch_reference_through_its_onnx_export_names_the_broken_node(broken, tmp_path):
    pytest.importorskip("torch")
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[5]})
    report = diverge([("torch", "fp32"), ("broken", "fp32")], opts, subgraph=tmp_path / "c.onnx").to_json()
    assert (report["status"], report["culprit"]["name"]) == ("found", NODES[5])
    assert report["reference"] == "torch:fp32"
    # the torch engine itself agrees with the export the search ran on
    assert report["torch_export"]["passed"] and report["torch_export"]["outputs"]["logits"]["max_abs"] < 1e-4


def test_top1_agreement_judges_only_the_graph_outputs():
    import numpy as np

    from dk.debug.diverge import check_tensor

    # flattened features whose largest entries are near ties: argmax flips, cosine stays 0.99999
    reference = np.tile(np.array([[1.0, 0.999, 0.5, 0.2]], np.float32), (8, 1))
    candidate = reference + np.array([0.0, 0.002, 0.0, 0.0], np.float32)
    hidden = check_tensor("/Flatten_output_0", reference, candidate, "int8")
    assert hidden.passed and hidden.failures == () and hidden.cosine > 0.99999
    output = check_tensor("logits", reference, candidate, "int8", graph_output=True)
    assert not output.passed and output.failures == ("top-1 agreement 0.0000 < 0.95",)


@pytest.mark.parametrize("engines,message", [
    ([("torch", "fp16"), ("ort", "int8")], "--plugins torch:fp16: the torch plugin exports fp32 ONNX only"),
    ([("ort", "fp32"), ("torch", "int8")], "--plugins torch:int8: the torch plugin exports fp32 ONNX only"),
    ([("ortt", "fp32"), ("ort", "fp32")], "no plugin named 'ortt'; did you mean 'ort'?"),
    ([("ort", "fp32"), ("onnxref", "int8")], "plugin 'onnxref' has no int8 precision (it builds fp32); give one of "
                                             "those in --plugins onnxref:PRECISION, or another plugin (plugins with int8:"),
])
def test_engines_that_cannot_take_part_are_refused_before_any_build(tmp_path, monkeypatch, engines, message):
    import dk.debug.diverge as module
    from dk.errors import DkError

    def no_graph(*args, **kwargs):
        raise AssertionError("the graph was needed before the engines were checked")

    monkeypatch.setattr(module, "graph_under_test", no_graph)
    with pytest.raises(DkError) as caught:
        diverge(engines, BuildOptions(out=tmp_path / "a"))
    assert str(caught.value).startswith(message) and caught.value.exit_code == 2
    assert not (tmp_path / "a").exists()


def test_a_subgraph_path_under_a_file_is_a_usage_error_before_any_build(broken, tmp_path):
    from dk.errors import UsageError

    (tmp_path / "afile").write_text("")
    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[3]})
    with pytest.raises(UsageError, match=r"^--subgraph .*afile/x/c.onnx: .*afile is a file, not a folder"):
        diverge([("ort", "fp32"), ("broken", "fp32")], opts, subgraph=tmp_path / "afile" / "x" / "c.onnx")
    assert broken.EXPORTS == []


def test_a_subgraph_that_cannot_be_written_keeps_the_search_result(broken, tmp_path):
    # the folder becomes a file while the search runs: the node found is still reported
    folder = tmp_path / "debug"

    def progress(line):
        if not folder.exists():
            folder.write_text("in the way")

    opts = BuildOptions(out=tmp_path / "a", options={"broken:node": NODES[3]})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, subgraph=folder / "c.onnx",
                     progress=progress).to_json()
    assert (report["status"], report["culprit"]["name"], report["subgraph"]) == ("found", NODES[3], None)
    assert report["subgraph_error"].startswith("cannot cut ")
    assert folder.read_text() == "in the way"


def test_ctrl_c_in_the_torch_export_check_prints_the_node_found_first(broken, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import dk.debug.diverge as module
    from dk.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "torch_export_check", interrupted)
    code = main(["debug", "diverge", "--plugins", "torch,broken", "-o", f"broken:node={NODES[5]}",
                 "--out", str(tmp_path / "a"), "--subgraph", str(tmp_path / "c.onnx")])
    out = capsys.readouterr().out
    assert code == 130
    assert f"first divergence: {NODES[5]} (Conv)" in out
    assert "interrupted while checking the torch engine against its own ONNX export" in out
    assert not (tmp_path / "c.onnx").exists()


@pytest.mark.parametrize("batch,samples", [("N", 12), (1, 3), (2, 5)])
def test_samples_sets_how_many_random_inputs_are_compared(broken, tmp_path, batch, samples):
    model = onnx.load(str(branch_model(tmp_path)))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].Clear()
        if isinstance(batch, int):
            value.type.tensor_type.shape.dim[0].dim_value = batch
        else:
            value.type.tensor_type.shape.dim[0].dim_param = batch
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    opts = BuildOptions(model=str(tmp_path / "fixed.onnx"), out=tmp_path / "a", options={"broken:node": "A1"})
    report = diverge([("ort", "fp32"), ("broken", "fp32")], opts, samples=samples).to_json()
    assert (report["data"], report["culprit"]["name"]) == ("random(seed=0)", "A1")
    # a fixed batch of 2 compares whole batches: 5 samples asked, the 4 of two complete batches compared
    assert report["samples"] == (4 if batch == 2 else samples)
