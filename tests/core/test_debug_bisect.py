"""The bisection logic on its own: a fake probe in which one node (and everything after it) diverges."""

from __future__ import annotations

import math

import pytest

from dk.debug.bisect import TensorCheck, bisect, spread
from dk.debug.graph import NodeInfo


def chain(n: int) -> list[NodeInfo]:
    return [NodeInfo(i, f"node{i}", "Relu", f"t{i}", (f"t{i - 1}",) if i else ("input",), ((1,),)) for i in range(n)]


def chain_ancestors(tensor: str) -> set[str]:
    return {f"t{i}" for i in range(int(tensor[1:]) + 1)}


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
    search = bisect(nodes, [OUTPUT], fake_probe(broken, calls), chain_ancestors, per_build)
    assert search.culprit.name == f"node{broken}"
    assert search.last_good == (nodes[broken - 1] if broken else None)
    assert search.builds == len(calls) <= math.ceil(math.log2(64)) + 2
    assert all(len(c) <= per_build for c in calls)  # never mark-all


def test_agreeing_engines_take_one_build_and_find_nothing():
    calls = []
    search = bisect(chain(64), [OUTPUT], fake_probe(None, calls), chain_ancestors)
    assert (search.diverged, search.culprit, search.builds) == (False, None, 1)


def test_ctrl_c_keeps_the_range_found_so_far():
    nodes, calls = chain(64), []
    inner = fake_probe(40, calls)

    def probe(tensors, with_outputs=True):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return inner(tensors)

    search = bisect(nodes, [OUTPUT], probe, chain_ancestors, 3)
    assert search.interrupted and search.culprit is None and search.builds == 2
    assert search.last_good.index < 40 <= int(search.steps[-1].bad[4:])


def test_only_ancestors_of_the_first_bad_node_stay_candidates():
    # two branches: a0..a9 and b0..b9, the output depends on both; b3 is broken
    nodes = [NodeInfo(i, n, "Relu", n, (), ()) for i, n in enumerate([f"a{k}" for k in range(10)] +
                                                                      [f"b{k}" for k in range(10)] + ["out"])]
    parents = {n.tensor: ({n.tensor[0] + str(int(n.tensor[1:]) - 1)} if n.tensor[1:] not in ("0", "ut") else set())
               for n in nodes}
    parents["out"] = {"a9", "b9"}

    def ancestors(t):
        seen, stack = set(), [t]
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                stack.extend(parents[x])
        return seen

    def probe(tensors, with_outputs=True):
        bad = {f"b{k}" for k in range(3, 10)} | {"out"}
        return {t: TensorCheck(t, t not in bad, 0, 0, 1) for t in [*tensors, "out"]}

    assert bisect(nodes, ["out"], probe, ancestors, 2).culprit.name == "b3"


def test_spread_picks_distinct_nodes_inside_the_range():
    nodes = chain(10)
    assert [n.index for n in spread(nodes, 3)] == [2, 5, 7]
    assert spread(nodes[:2], 3) == nodes[:2]
