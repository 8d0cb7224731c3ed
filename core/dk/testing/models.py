"""The default model as the conformance suite uses it: reference outputs, and a per-class cache
of each plugin's artifacts and engines (no pytest here, so tools can reuse it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dk import api
from dk.artifacts import Artifact
from dk.engine import Engine
from dk.specs import ExportRequest, ModelSource, QuantizeRequest, TensorSpec

DEFAULT_SOURCE = ModelSource("default", "dk:digitsnet")
CALIBRATION_NAME = "digitsnet-calib"


@lru_cache(maxsize=1)
def default_io() -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output specs of the default model's ONNX file."""
    from dk.default_model import ONNX_PATH
    from dk.onnx_io import io_specs, load_onnx

    inputs, outputs = io_specs(load_onnx(ONNX_PATH))
    return tuple(inputs), tuple(outputs)


@lru_cache(maxsize=1)
def eval_split() -> tuple[np.ndarray, np.ndarray]:
    """The default model's held-out inputs [N, 1, 8, 8] float32 and labels [N]."""
    from dk.default_model import load_split

    return load_split("eval")


@lru_cache(maxsize=1)
def reference_eval_outputs() -> dict[str, np.ndarray]:
    """Outputs of ``onnx.reference.ReferenceEvaluator`` on the default ONNX over the eval split."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from dk.default_model import ONNX_PATH

    model = onnx.load(str(ONNX_PATH))
    (spec,), outputs = default_io()
    values = ReferenceEvaluator(model).run(None, {spec.name: eval_split()[0]})
    return {o.name: np.asarray(v) for o, v in zip(outputs, values)}


def calibration_feeds(batch: int = 32):
    """A calibration set (see :data:`dk.specs.CalibrationData`) over the default model's calib split."""
    from dk.default_model import load_split

    x, _ = load_split("calib")
    name = default_io()[0][0].name
    return lambda: ({name: x[i : i + batch]} for i in range(0, len(x), batch))


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``: an engine that writes into its inputs fails loudly."""
    view = np.asarray(array).view()
    view.setflags(write=False)
    return view


def run_batched(engine: Engine, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``x`` through a one-input engine in batches it accepts, each a read-only array;
    outputs keep the dtype the engine returned (nothing is cast before it is checked)."""
    spec = engine.inputs[0]
    dim = spec.shape[0]
    if isinstance(dim, int):
        step = dim
    else:
        step = spec.max_shape[0] if spec.max_shape else len(x)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        n = len(chunk)
        if isinstance(dim, int) and n < dim:  # a fixed batch: pad the last chunk, drop the padding
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], dim - n, axis=0)])
        out = engine.infer({spec.name: read_only(np.ascontiguousarray(chunk, dtype=np.dtype(spec.dtype)))})
        parts.append({k: np.asarray(v)[:n] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def top1_accuracy(outputs: Mapping[str, np.ndarray], labels: np.ndarray) -> float:
    """Top-1 accuracy of the first output's argmax against ``labels``."""
    logits = next(iter(outputs.values()))
    return float(np.mean(np.argmax(logits, axis=1) == labels))


class DefaultModelRuns:
    """Artifacts, engines and eval-split outputs of plugins on the default model, built once.

    Keyed by (plugin, precision); fp16 comes from export, int8 from quantize.
    """

    def __init__(self, out_dir: Path, device: str = "cpu", load_options: Mapping[str, str] | None = None,
                 options_plugin: str | None = None):
        """``load_options`` go to ``options_plugin`` only (every plugin when it is None): the
        torch reference refuses another engine's keys."""
        self.out_dir, self.device = Path(out_dir), device
        self.load_options = dict(load_options or {})
        self.options_plugin = options_plugin
        self._artifacts: dict[tuple[str, str], Artifact] = {}
        self._engines: dict[tuple[str, str], Engine] = {}
        self._outputs: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def build(self, plugin: str, precision: str = "fp32", force: bool = False) -> Artifact:
        """Export (fp32, fp16) or quantize (int8) the default model with ``plugin``."""
        if precision == "int8":
            request: Any = QuantizeRequest(
                source=DEFAULT_SOURCE, out_dir=self.out_dir, calibration=calibration_feeds(),
                calibration_name=CALIBRATION_NAME, force=force,
            )
            return api.quantize(plugin, request)
        request = ExportRequest(
            source=DEFAULT_SOURCE, out_dir=self.out_dir, precision=precision, device=self.device,
            force=force,
        )
        return api.export(plugin, request)

    def artifact(self, plugin: str, precision: str = "fp32") -> Artifact:
        key = (plugin, precision)
        if key not in self._artifacts:
            self._artifacts[key] = self.build(plugin, precision)
        return self._artifacts[key]

    def engine(self, plugin: str, precision: str = "fp32") -> Engine:
        key = (plugin, precision)
        if key not in self._engines:
            artifact = self.artifact(plugin, precision)
            options = self.load_options if self.options_plugin in (None, plugin) else {}
            self._engines[key] = api.load_engine(plugin, artifact, self.device, options)
        return self._engines[key]

    def eval_outputs(self, plugin: str, precision: str = "fp32") -> dict[str, np.ndarray]:
        """The engine's outputs over the whole eval split."""
        key = (plugin, precision)
        if key not in self._outputs:
            self._outputs[key] = run_batched(self.engine(plugin, precision), eval_split()[0])
        return self._outputs[key]

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
