"""The search for the first diverging node: mark a few tensors, compare, narrow the range.

Pure logic over a ``probe(tensors) -> {tensor: TensorCheck}`` callable (which builds and runs both
engines), so it is tested without any engine. It assumes what every such tool assumes: once a
tensor diverges, the tensors computed from it diverge too. Each step marks up to ``per_build``
tensors spread evenly over the nodes still in question, so a graph of ``n`` candidate nodes takes
about ``1 + log(n) / log(per_build + 1)`` steps, each one build of each engine, never mark-all.
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
    interrupted: bool = False

    @property
    def builds(self) -> int:
        return len(self.steps)


Probe = Callable[[Sequence[str], bool], Mapping[str, TensorCheck]]


def spread(candidates: Sequence[NodeInfo], count: int) -> list[NodeInfo]:
    """``count`` nodes spread evenly over ``candidates`` (all of them when there are no more)."""
    if len(candidates) <= count:
        return list(candidates)
    picks = sorted({min(len(candidates) - 1, (j + 1) * len(candidates) // (count + 1)) for j in range(count)})
    return [candidates[i] for i in picks]


def bisect(nodes: Sequence[NodeInfo], outputs: Sequence[str], probe: Probe, ancestors: Callable[[str], set[str]],
           per_build: int = 3) -> Search:
    """Find the first node, in topological order, whose output diverges.

    :param nodes: Candidate nodes in topological order.
    :param outputs: The graph's output tensors (present in every build).
    :param probe: ``probe(tensors, with_outputs)`` builds and runs both engines with the given
        tensors marked and returns a check for each of them, and for each graph output when
        ``with_outputs`` (the first build only: later ones may build just the graph up to the tensors).
    :param ancestors: The tensors a tensor depends on (itself included): once a node is known bad,
        only its ancestors can hold the first divergence.
    :param per_build: Tensors marked per build besides the outputs.

    A ``KeyboardInterrupt`` stops the search: the result has ``interrupted`` set and the range found so far.
    """
    search = Search(list(nodes), list(outputs))
    by_tensor = {n.tensor: n for n in nodes}
    lo, hi = -1, len(nodes)  # nodes[lo] agrees (-1: the inputs); nodes[hi] diverges once known
    candidates = list(nodes)
    try:
        while True:
            marked = spread(candidates, per_build)
            start = time.perf_counter()
            checks = dict(probe([n.tensor for n in marked], not search.steps))
            if not search.steps:
                search.output_checks = {o: checks[o] for o in outputs if o in checks}
                failed = [o for o in outputs if o in checks and not checks[o].passed]
                search.diverged = bool(failed)
                if not failed:
                    search.steps.append(Step(1, marked, checks, None, None, time.perf_counter() - start))
                    return search
                first_output = min((by_tensor[o].index for o in failed if o in by_tensor), default=len(nodes))
                if first_output < len(nodes):
                    hi = first_output
            bad = [n.index for n in marked if not checks[n.tensor].passed and n.index < hi]
            if bad:
                hi = min(bad)
            good = [n.index for n in marked if checks[n.tensor].passed and lo < n.index < hi]
            if good:
                lo = max(good)
            search.steps.append(Step(len(search.steps) + 1, marked, checks, _name(nodes, lo), _name(nodes, hi),
                                     time.perf_counter() - start))
            if hi < len(nodes):
                needed = ancestors(nodes[hi].tensor)
                candidates = [n for n in nodes[lo + 1 : hi] if n.tensor in needed]
            else:  # the diverging output is no candidate node: search all after lo
                candidates = list(nodes[lo + 1 :])
            if not candidates:
                break
    except KeyboardInterrupt:
        search.interrupted = True
    if hi < len(nodes):
        search.last_good = nodes[lo] if lo >= 0 else None
        if not search.interrupted:
            search.culprit = nodes[hi]
    return search


def _name(nodes: Sequence[NodeInfo], index: int) -> str | None:
    return nodes[index].name if 0 <= index < len(nodes) else None
