"""ONNX's own reference evaluator as an engine (numpy only, slow, exact to the ONNX spec).

No plugin: ``dk debug diverge`` runs ``torch``'s side with it, on the torch plugin's ONNX export with
marked tensors (the torch engine runs torch modules, which have no ONNX tensor names to mark).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dk.engine import Engine

class ReferenceEngine(Engine):
    """``onnx.reference.ReferenceEvaluator`` over one ONNX file."""

    name = "onnx-reference"

    def __init__(self, path: Path):
        from onnx.reference import ReferenceEvaluator

        from dk.onnx_io import io_specs, load_onnx

        model = load_onnx(path)
        self.inputs, self.outputs = io_specs(model)
        self._names = [o.name for o in model.graph.output]
        self._evaluator = ReferenceEvaluator(model)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
        values = self._evaluator.run(None, dict(inputs))
        return {name: np.asarray(v) for name, v in zip(self._names, values)}
