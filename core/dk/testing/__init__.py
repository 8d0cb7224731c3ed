"""dk's conformance kit for backend plugins: subclass :class:`BackendConformance` in a test file.

``dk.testing.tolerances`` (numpy only) is imported here; the suite (pytest) and the graph
strategies (hypothesis) are imported on first use, so ``dk compare`` needs neither.
"""

from __future__ import annotations

from typing import Any

from dk.testing.tolerances import (
    TOLERANCES,
    ComparisonResult,
    OutputComparison,
    Tolerance,
    compare_outputs,
    tolerance_for,
)

_LAZY = {
    "BackendConformance": "dk.testing.conformance",
    "require_plugin": "dk.testing.conformance",
    "GeneratedGraph": "dk.testing.graphs",
    "onnx_graphs": "dk.testing.graphs",
    "batch_sizes": "dk.testing.graphs",
    "check_generated_graphs": "dk.testing.parity",
    "compare_with_reference": "dk.testing.parity",
}

__all__ = [
    "TOLERANCES", "ComparisonResult", "OutputComparison", "Tolerance", "compare_outputs", "tolerance_for",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dk.testing' has no attribute {name!r}")
