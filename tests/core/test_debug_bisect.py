"""The bisection logic on its own: a fake probe in which one node (and everything after it) diverges."""

from __future__ import annotations

import math

import pytest

from dk.debug.bisect import Knowledge, TensorCheck, bisect, spread
from dk.debug.graph import NodeInfo


def chain(n: int) -> list[NodeInfo]:
    return [NodeInfo(i, f"node{i}", "Relu", f"t{i}", (f"t{i - 1}",) if i else ("input",), ((1,),)) for i in range(n)]


def chain_inputs(n: int) -> dict[str, tuple[str, ...]]:
    return {f"t{i}": (f"t{i - 1}",) if i else () for i in range(n)}


def fake_probe(broken: int | None, calls: list):
    def probe(tensors, with_outputs=True):
        calls.append(list(tensors))
        names = [*tensors, OUTPUT]
        return {t: TensorCheck(t, broken is None or int(t[1:]) < broken, 0.0, 0.0, 1.0) for t in names}
    return probe


OUTPUT = "t63"


@pytest.mark.parametrize("per_build", [1, 3])
@pytest.mark.parametrize("broken", [0, 1, 17, 31, 62, 63])
def test_bisection_names_the_broken_node_within_the_build_bound(broken, per_build):
    nodes, calls = chain(64), []
    search = bisect(nodes, [OUTPUT], fake_probe(broken, calls), chain_inputs(64), per_build)
    assert search.culprit.name == f"node{broken}"
    assert search.last_good == (nodes[broken - 1] if broken else None)
    assert search.builds == len(calls) <= math.ceil(math.log2(64)) + 2
    assert all(len(c) <= per_build for c in calls)  # never mark-all


def test_agreeing_engines_take_one_build_and_find_nothing():
    calls = []
    search = bisect(chain(64), [OUTPUT], fake_probe(None, calls), chain_inputs(64))
    assert (search.diverged, search.culprit, search.builds) == (False, None, 1)


def test_ctrl_c_keeps_the_range_found_so_far():
    nodes, calls = chain(64), []
    inner = fake_probe(40, calls)

    def probe(tensors, with_outputs=True):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return inner(tensors)

    search = bisect(nodes, [OUTPUT], probe, chain_inputs(64), 3)
    assert search.interrupted and search.culprit is None and search.builds == 2
    assert search.last_good.index < 40 <= int(search.steps[-1].bad[4:])


def dag(edges: dict[str, tuple[str, ...]]) -> tuple[list[NodeInfo], dict[str, tuple[str, ...]]]:
    """Nodes named by ``edges`` (in topological order: name -> the names it is computed from)."""
    nodes = [NodeInfo(i, name, "Add", name, parents, ()) for i, (name, parents) in enumerate(edges.items())]
    return nodes, edges


def descendants_probe(edges: dict[str, tuple[str, ...]], broken: str | None, calls: list, outputs: list[str]):
    """A fake probe in which ``broken`` and everything computed from it diverge."""
    bad = set()
    for name, parents in edges.items():  # topological order
        if name == broken or bad.intersection(parents):
            bad.add(name)

    def probe(tensors, with_outputs=True):
        calls.append(list(tensors))
        return {t: TensorCheck(t, t not in bad, 0.0, 0.0, 1.0) for t in [*tensors, *outputs]}
    return probe


def branch_graph() -> dict[str, tuple[str, ...]]:
    """Branch a (a0..a2) first, then a long branch b (b0..b7) from the input, then out = a2 + b7:
    agreeing b nodes come after the a nodes in topological order but prove nothing about them."""
    edges: dict[str, tuple[str, ...]] = {"a0": (), "a1": ("a0",), "a2": ("a1",)}
    edges.update({f"b{k}": ((f"b{k - 1}",) if k else ()) for k in range(8)})
    edges["out"] = ("a2", "b7")
    return edges


def residual_graph(blocks: int = 6) -> dict[str, tuple[str, ...]]:
    """A stem and residual blocks whose skip path is computed after the main path, as in
    resmod.py of the audit: x -> c1 -> c2 ; x -> s0..s2 ; add(c2, s2) -> next block."""
    edges: dict[str, tuple[str, ...]] = {"stem": ()}
    previous = "stem"
    for b in range(blocks):
        edges[f"r{b}c1"] = (previous,)
        edges[f"r{b}c2"] = (f"r{b}c1",)
        edges[f"r{b}s0"] = (previous,)
        edges[f"r{b}s1"] = (f"r{b}s0",)
        edges[f"r{b}s2"] = (f"r{b}s1",)
        edges[f"r{b}add"] = (f"r{b}c2", f"r{b}s2")
        previous = f"r{b}add"
    edges["head"] = (previous,)
    return edges


BRANCH, RESIDUAL = branch_graph(), residual_graph()


@pytest.mark.parametrize("per_build", [1, 2, 3, 5])
@pytest.mark.parametrize("edges,broken", [(BRANCH, name) for name in BRANCH] +
                         [(RESIDUAL, name) for name in ("stem", "r0c2", "r2c1", "r3s1", "r5add", "r5s0", "head")])
def test_an_agreeing_parallel_branch_does_not_hide_the_broken_node(edges, broken, per_build):
    nodes, inputs = dag(edges)
    output = list(edges)[-1]
    calls: list = []
    search = bisect(nodes, [output], descendants_probe(edges, broken, calls, [output]), inputs, per_build)
    assert search.culprit.name == broken
    broken_index = list(edges).index(broken)
    assert search.last_good == (nodes[broken_index - 1] if broken_index else None)
    assert search.builds <= math.ceil(math.log2(len(nodes))) + 2


def test_a_last_good_node_never_compared_names_the_node_that_proved_it():
    # r0c1 broken: the stem is proven good only by the skip path r0s1, computed from it, agreeing
    from dk.debug.diverge import DivergeResult

    nodes, inputs = dag(RESIDUAL)
    search = bisect(nodes, ["head"], descendants_probe(RESIDUAL, "r0c1", [], ["head"]), inputs, 1)
    assert (search.culprit.name, search.last_good.name, search.last_good_proven_by.name) == ("r0c1", "stem", "r0s1")
    assert not any("stem" in step.checks for step in search.steps)  # so it has no error of its own
    report = DivergeResult("a", "b", "g", "d", 1, search, "fp32").to_json()
    assert (report["last_good"], report["last_good_error"], report["last_good_proven_by"]) == ("stem", None, "r0s1")


def test_a_last_good_node_compared_itself_has_its_error_and_no_proven_by():
    from dk.debug.diverge import DivergeResult

    nodes, calls = chain(64), []
    search = bisect(nodes, [OUTPUT], fake_probe(17, calls), chain_inputs(64), 3)
    report = DivergeResult("a", "b", "g", "d", 1, search, "fp32").to_json()
    assert report["last_good"] == "node16" and report["last_good_error"]["passed"] is True
    assert report["last_good_proven_by"] is None


def test_a_node_after_the_broken_one_that_agrees_is_no_lower_bound():
    # the audit's qbranch.onnx with the old search: build 1 marked b1, b4 (agree), out (diverges),
    # and the agreeing b7 moved the lower bound past a1, the node actually broken
    nodes, inputs = dag(BRANCH)
    calls: list = []
    search = bisect(nodes, ["out"], descendants_probe(BRANCH, "a1", calls, ["out"]), inputs, 1)
    assert search.culprit.name == "a1"
    assert all("b7" not in c or "a2" in c for c in calls)  # b7 is compared only with the a branch's tip


@pytest.mark.parametrize("per_build", [1, 3])
def test_a_chain_still_takes_a_logarithmic_number_of_builds(per_build):
    for broken in range(64):
        calls: list = []
        search = bisect(chain(64), [OUTPUT], fake_probe(broken, calls), chain_inputs(64), per_build)
        assert search.builds <= 1 + math.ceil(math.log(64) / math.log(per_build + 1))


def test_a_second_broken_node_on_another_branch_does_not_move_the_answer():
    # two independent faults: the first in topological order is named, as --mark-all names it
    nodes, inputs = dag(BRANCH)
    bad = {"a2", "b3", "b4", "b5", "b6", "b7", "out"}

    def probe(tensors, with_outputs=True):
        return {t: TensorCheck(t, t not in bad, 0.0, 0.0, 1.0) for t in [*tensors, "out"]}

    for per_build in (1, 2, 3):
        assert bisect(nodes, ["out"], probe, inputs, per_build).culprit.name == "a2"


def test_only_the_nodes_in_question_are_marked():
    # two branches: a0..a9 and b0..b9, the output depends on both; b3 is broken
    edges = {f"a{k}": ((f"a{k - 1}",) if k else ()) for k in range(10)}
    edges.update({f"b{k}": ((f"b{k - 1}",) if k else ()) for k in range(10)})
    edges["out"] = ("a9", "b9")
    nodes, inputs = dag(edges)
    calls: list = []
    search = bisect(nodes, ["out"], descendants_probe(edges, "b3", calls, ["out"]), inputs, 2)
    assert search.culprit.name == "b3" and search.last_good.name == "b2"
    assert all(len(c) <= 2 for c in calls)


def test_spread_picks_distinct_nodes_inside_the_range():
    nodes = chain(10)
    assert [n.index for n in spread(nodes, 3)] == [2, 5, 7]
    assert spread(nodes[:2], 3) == nodes[:2]


def test_the_frontier_of_a_prefix_is_what_no_later_node_of_it_is_computed_from():
    nodes, inputs = dag(BRANCH)
    known = Knowledge(nodes, inputs)
    index = {n.name: n.index for n in nodes}
    assert [nodes[i].name for i in known.frontier(index["b4"])] == ["a2", "b4"]
    assert [nodes[i].name for i in known.frontier(index["a1"])] == ["a1"]
    known.agrees(index["b4"])  # b0..b4 agree; a0 does not follow from it
    assert known.lo == -1
    assert [nodes[i].name for i in known.frontier(index["b6"])] == ["a2", "b6"]
    assert known.frontier_sizes() == {i: len(known.frontier(i)) for i in range(len(nodes))}
