"""Numerical parity of a plugin with ``onnx.reference.ReferenceEvaluator`` over generated graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from dk import api
from dk.specs import ExportRequest, ModelSource
from dk.testing.graphs import GeneratedGraph, onnx_graphs
from dk.testing.tolerances import ComparisonResult, compare_outputs


def compare_with_reference(
    plugin: str,
    graph: GeneratedGraph,
    root: Path,
    device: str = "cpu",
    load_options: Mapping[str, str] | None = None,
    seed: int = 0,
) -> ComparisonResult:
    """Export ``graph`` with ``plugin`` (artifacts under ``root``), run it at the graph's batch
    size and compare with the reference evaluator at fp32 tolerance."""
    from onnx.reference import ReferenceEvaluator

    path = graph.save(root)
    source = ModelSource("onnx", str(path))
    request = ExportRequest(source=source, out_dir=root / "artifacts", device=device)
    artifact = api.export(plugin, request)
    feeds = graph.feeds(seed)
    with api.load_engine(plugin, artifact, device, dict(load_options or {})) as engine:
        got = engine.infer(feeds)
    names = [o.name for o in graph.model.graph.output]
    want = dict(zip(names, ReferenceEvaluator(graph.model).run(None, feeds)))
    return compare_outputs(want, got, "fp32")


def check_generated_graphs(
    plugin: str,
    root: Path,
    device: str = "cpu",
    load_options: Mapping[str, str] | None = None,
    max_examples: int = 25,
    max_layers: int = 5,
) -> None:
    """Run a Hypothesis search for a generated graph on which ``plugin`` disagrees with the
    reference; raises ``AssertionError`` with the shrunk graph when it finds one."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    root.mkdir(parents=True, exist_ok=True)

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(graph=onnx_graphs(max_layers=max_layers), seed=st.integers(0, 2**16))
    def parity(graph: GeneratedGraph, seed: int) -> None:
        result = compare_with_reference(plugin, graph, root, device, load_options, seed)
        assert result.passed, f"{plugin} differs from the reference on {graph}:\n{result.summary()}"

    parity()
