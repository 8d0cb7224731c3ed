"""The search for the first diverging node: mark a few tensors, compare, narrow the range.

Pure logic over a ``probe(tensors) -> {tensor: TensorCheck}`` callable (which builds and runs both
engines), so it is tested without any engine. It assumes what every such tool assumes: once a
tensor diverges, the tensors computed from it diverge too. Each step marks up to ``per_build``
tensors at prefixes of the topological order spread over the nodes still in question (an agreeing
node proves only itself and its ancestors, never a parallel branch), so a chain of ``n`` candidate
nodes takes about ``1 + log(n) / log(per_build + 1)`` steps, each one build of each engine, never mark-all.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import attrs

from dk.debug.graph import NodeInfo


@attrs.frozen
class TensorCheck:
    """One tensor compared: whether it is within tolerance and its errors; ``clamp``: the range both
    sides were clamped to first (:class:`dk.debug.graph.NodeInfo`), None when compared as they are."""

    tensor: str
    passed: bool
    max_abs: float
    max_rel: float
    cosine: float
    failures: tuple[str, ...] = ()
    clamp: tuple[float | None, float | None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "failures": list(self.failures),
                "clamp": None if self.clamp is None else list(self.clamp)}


@attrs.define
class Step:
    """One build of both engines: the nodes it marked and what it found."""

    number: int
    marked: list[NodeInfo]
    checks: dict[str, TensorCheck]
    good: str | None  # last node known good after the step (None: the graph inputs)
    bad: str | None  # first node known bad after the step (None: not known yet)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"step": self.number, "marked": [n.name for n in self.marked], "good_up_to": self.good,
                "first_bad_so_far": self.bad, "seconds": self.seconds,
                "checks": {k: v.to_json() for k, v in self.checks.items()}}


@attrs.define
class Search:
    """The state and outcome of a bisection; ``culprit`` is set once found."""

    nodes: list[NodeInfo]
    outputs: list[str]
    steps: list[Step] = attrs.field(factory=list)
    output_checks: dict[str, TensorCheck] = attrs.field(factory=dict)
    diverged: bool | None = None  # None: not known yet (interrupted before the first step ended)
    culprit: NodeInfo | None = None
    last_good: NodeInfo | None = None
    #: the compared node that proved ``last_good`` agrees: itself, or a node computed from it (then
    #: ``last_good`` was never compared itself and has no error of its own)
    last_good_proven_by: NodeInfo | None = None
    interrupted: bool = False

    @property
    def builds(self) -> int:
        return len(self.steps)


Probe = Callable[[Sequence[str], bool], Mapping[str, TensorCheck]]


def spread(candidates: Sequence[Any], count: int) -> list[Any]:
    """``count`` items spread evenly over ``candidates`` (all of them when there are no more)."""
    if len(candidates) <= count:
        return list(candidates)
    picks = sorted({min(len(candidates) - 1, (j + 1) * len(candidates) // (count + 1)) for j in range(count)})
    return [candidates[i] for i in picks]


class Knowledge:
    """What the builds so far proved about the candidate nodes, as a DAG over their indices.

    ``lo``: every node up to it agrees (-1: none known); ``hi``: the first node seen to diverge
    (``len(nodes)``: none yet), so the first divergence lies in ``(lo, hi]``. An agreeing node
    proves itself and, by the search's assumption, its ancestors; nothing about other nodes.
    """

    def __init__(self, nodes: Sequence[NodeInfo], inputs: Mapping[str, Sequence[str]]) -> None:
        index = {n.tensor: n.index for n in nodes}
        self.count = len(nodes)
        self.parents = [sorted({index[t] for t in inputs.get(n.tensor, ()) if t in index and index[t] < n.index})
                        for n in nodes]
        # the lowest index of a node computed from each node: the prefix up to k covers node i when
        # first_use[i] <= k, since then i's divergence would show in a later node of the prefix
        self.first_use = [self.count] * self.count
        for i, parents in enumerate(self.parents):
            for p in parents:
                self.first_use[p] = min(self.first_use[p], i)
        self.good = [False] * self.count
        #: for each node known to agree, the compared node that proved it (itself, or a descendant)
        self.proven_by: list[int | None] = [None] * self.count
        self.lo, self.hi = -1, self.count

    def agrees(self, i: int) -> None:
        """Node ``i`` agrees: so do its ancestors; ``lo`` moves over the prefix now known to agree."""
        stack = [i]
        while stack:
            j = stack.pop()
            if not self.good[j]:
                self.good[j], self.proven_by[j] = True, i
                stack.extend(self.parents[j])
        while self.lo + 1 < self.count and self.good[self.lo + 1]:
            self.lo += 1

    def diverges(self, i: int) -> None:
        self.hi = min(self.hi, i)

    @property
    def settled(self) -> bool:
        return self.lo + 1 >= self.hi

    def frontier(self, k: int) -> list[int]:
        """The nodes to compare to prove that nodes ``0..k`` all agree: those of the prefix not yet
        known to agree whose output no later node of the prefix is computed from."""
        return [i for i in range(self.lo + 1, k + 1) if not self.good[i] and self.first_use[i] > k]

    def frontier_sizes(self) -> dict[int, int]:
        """``len(frontier(k))`` for every open split ``k`` in ``(lo, hi)``, in one sweep."""
        leaving: dict[int, int] = {}
        for i in range(self.lo + 1, self.hi):
            if not self.good[i] and self.first_use[i] < self.hi:
                leaving[self.first_use[i]] = leaving.get(self.first_use[i], 0) + 1
        sizes, open_nodes = {}, 0
        for k in range(self.lo + 1, self.hi):
            open_nodes += (not self.good[k]) - leaving.get(k, 0)
            sizes[k] = open_nodes
        return sizes


def choose_splits(known: Knowledge, per_build: int) -> list[int]:
    """The nodes to mark in the next build: the frontiers of up to ``per_build`` prefixes spread
    over the open range, each split moved (by at most an eighth of the range between splits) to
    the narrowest frontier nearby. Fewer splits when their frontiers do not fit in ``per_build``;
    one split's frontier is marked whole even when wider (a graph that many branches wide)."""
    sizes = known.frontier_sizes()
    positions = list(sizes)
    for count in range(min(per_build, len(positions)), 0, -1):
        reach = len(positions) // (4 * (count + 1))
        splits = []
        for ideal in spread(positions, count):
            nearby = range(max(positions[0], ideal - reach), min(positions[-1], ideal + reach) + 1)
            splits.append(min(nearby, key=lambda k: (sizes[k], abs(k - ideal))))
        marked = sorted({i for k in splits for i in known.frontier(k)})
        if len(marked) <= per_build or count == 1:
            return marked
    raise AssertionError("no open split")  # unreachable: the caller stops once the range is settled


def bisect(nodes: Sequence[NodeInfo], outputs: Sequence[str], probe: Probe, inputs: Mapping[str, Sequence[str]],
           per_build: int = 3) -> Search:
    """Find the first node, in topological order, whose output diverges.

    :param nodes: Candidate nodes in topological order.
    :param outputs: The graph's output tensors (present in every build).
    :param probe: ``probe(tensors, with_outputs)`` builds and runs both engines with the given
        tensors marked and returns a check for each of them, and for each graph output when
        ``with_outputs`` (the first build only: later ones may build just the graph up to the tensors).
    :param inputs: For each node's tensor, the node tensors it is computed from directly
        (:func:`dk.debug.graph.candidate_inputs`): an agreeing node vouches for its ancestors only.
    :param per_build: Tensors marked per build besides the outputs (more only where the graph is
        wider than that at every split).

    The search is a bisection over the prefixes of the topological order: "some node among the
    first k diverges" is monotone in k, and it holds exactly when one of the prefix's frontier
    nodes (those no later node of the prefix is computed from) diverges. On a chain each frontier
    is one node: about ``1 + log(n) / log(per_build + 1)`` builds. A ``KeyboardInterrupt`` stops the
    search: the result has ``interrupted`` set and the range found so far.
    """
    search = Search(list(nodes), list(outputs))
    by_tensor = {n.tensor: n for n in nodes}
    known = Knowledge(nodes, inputs)
    try:
        while not search.steps or not known.settled:
            marked = [nodes[i] for i in choose_splits(known, per_build)]
            start = time.perf_counter()
            checks = dict(probe([n.tensor for n in marked], not search.steps))
            if not search.steps:
                search.output_checks = {o: checks[o] for o in outputs if o in checks}
                search.diverged = any(not c.passed for c in search.output_checks.values())
                if not search.diverged:
                    search.steps.append(Step(1, marked, checks, None, None, time.perf_counter() - start))
                    return search
                _learn(known, [by_tensor[o] for o in search.output_checks if o in by_tensor], checks)
            _learn(known, marked, checks)
            search.steps.append(Step(len(search.steps) + 1, marked, checks, _name(nodes, known.lo),
                                     _name(nodes, known.hi), time.perf_counter() - start))
    except KeyboardInterrupt:
        search.interrupted = True
    if known.lo >= 0:
        search.last_good, search.last_good_proven_by = nodes[known.lo], nodes[known.proven_by[known.lo]]
    if known.hi < len(nodes) and not search.interrupted:
        search.culprit = nodes[known.hi]
    return search


def _learn(known: Knowledge, compared: Sequence[NodeInfo], checks: Mapping[str, TensorCheck]) -> None:
    for node in compared:
        if checks[node.tensor].passed:
            known.agrees(node.index)
        else:
            known.diverges(node.index)


def _name(nodes: Sequence[NodeInfo], index: int) -> str | None:
    return nodes[index].name if 0 <= index < len(nodes) else None
