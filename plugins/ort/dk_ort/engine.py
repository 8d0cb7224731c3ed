"""OrtEngine: an ONNX artifact opened in an ONNX Runtime InferenceSession."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from dk.artifacts import Artifact
from dk.engine import Engine, InputChecker
from dk.errors import DkError, ModelError
from dk.specs import TensorSpec

from dk_ort.options import LOAD_OPTIONS, check_options, parse_int, parse_level
from dk_ort.providers import providers_for
from dk_ort.session import create_session, session_options

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(uint16)": "uint16",
    "tensor(int32)": "int32", "tensor(uint32)": "uint32", "tensor(int64)": "int64", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


class OrtEngine(Engine):
    """Runs feeds through an InferenceSession; ``infer`` adds only the input check to ``session.run``."""

    def __init__(self, session: Any, *, name: str, device: str, precision: str, inputs: Sequence[TensorSpec],
                 outputs: Sequence[TensorSpec]):
        self.session = session
        self.name, self.device, self.precision = name, device, precision
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._check = InputChecker(self.inputs)
        self._output_names = [s.name for s in self.outputs]
        self._run = compiled_run(session) or session.run

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        names = self._output_names
        return dict(zip(names, self._run(names, inputs)))

    def close(self) -> None:
        self.session = None
        self._run = _closed

    def describe(self) -> dict[str, Any]:
        providers = self.session.get_providers() if self.session is not None else []
        return {**super().describe(), "providers": providers}


def compiled_run(session: Any) -> Any:
    """ONNX Runtime's compiled ``run`` for a CPU-only session, or None to use ``session.run``.

    ``InferenceSession.run`` is a Python wrapper that checks input names (dk's InputChecker has
    already done so, and admits numpy arrays only, so its OrtValue ownership check has nothing to
    do), checks WebGPU graph-capture use, and on an execution-provider failure falls back to
    other providers (only GPU providers fail that way). Calling the compiled method saves about
    1.3 us per call, which is as much as dk's own input check and output dict cost."""
    if list(session.get_providers()) != ["CPUExecutionProvider"]:
        return None
    run = getattr(getattr(session, "_sess", None), "run", None)
    if not callable(run):
        return None
    return lambda names, feeds: run(names, feeds, None)


def _closed(*_: Any) -> Any:
    raise DkError("this ort engine is closed; load the artifact again")


def load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> OrtEngine:
    """Open any artifact of format ``onnx`` (ours, or another plugin's) on ``device``."""
    check_options(options, LOAD_OPTIONS, "load")
    if artifact.format != "onnx":
        raise ModelError(
            f"the ort plugin runs ONNX artifacts; {artifact.path} holds a {artifact.format!r} model from plugin "
            f"{artifact.plugin!r}"
        )
    level = parse_level(options.get("level"), "all")
    threads = parse_int(options, "threads", 0)
    spin = options.get("spin", "1").strip().lower() not in ("0", "false", "no")
    path = model_file(artifact, options.get("format", "onnx").strip().lower())
    providers = providers_for(device)
    if path.suffix == ".onnx":
        from dk.onnx_io import load_onnx

        load_onnx(path, load_external_data=False)  # clear errors, refuses external data outside the folder
    session = create_session(path, session_options(level, threads, spin=spin), providers)
    inputs = merge_ranges(session_specs(session.get_inputs()), artifact.inputs)
    return OrtEngine(session, name=artifact.name, device=device, precision=artifact.precision, inputs=inputs,
                     outputs=session_specs(session.get_outputs()))


def model_file(artifact: Artifact, fmt: str) -> Path:
    if fmt == "onnx":
        return artifact.model_file
    if fmt != "ort":
        raise DkError(f"option format={fmt} is not one of onnx, ort")
    for entry in artifact.manifest["files"]:
        if entry["name"].endswith(".ort"):
            return artifact.path / entry["name"]
    raise ModelError(f"artifact {artifact.path} has no .ort file; export it with --option format=ort")


def session_specs(args: Sequence[Any]) -> list[TensorSpec]:
    """TensorSpecs from ORT's NodeArgs (``None`` dims get a symbolic name)."""
    return [
        TensorSpec(
            a.name,
            tuple(d if isinstance(d, (int, str)) else f"dim{i}" for i, d in enumerate(a.shape)),
            _ORT_TYPES.get(a.type, "float32"),
        )
        for a in args
    ]


def merge_ranges(specs: list[TensorSpec], manifest: Sequence[TensorSpec]) -> list[TensorSpec]:
    """Add the manifest's min/max shapes (what the artifact was built for) to the session's specs."""
    by_name = {s.name: s for s in manifest}
    merged = []
    for spec in specs:
        known = by_name.get(spec.name)
        if known is not None and len(known.shape) == len(spec.shape):
            spec = attrs.evolve(spec, min_shape=known.min_shape, max_shape=known.max_shape)
        merged.append(spec)
    return merged
