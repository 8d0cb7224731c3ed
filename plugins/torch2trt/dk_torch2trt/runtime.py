"""Loading a torch2trt ``.pth`` (a TRTModule state dict) and running it as a dk engine.

The state dict holds the serialized engine as bytes plus input/output names and flattener
schemas (lists, dicts, ints): ``torch.load(weights_only=True)`` reads it, so no pickle runs.

torch2trt fact (master 4e820ae3, torch2trt/trt_module.py ``_load_from_state_dict``): it calls
``runtime.deserialize_cuda_engine`` and then ``.create_execution_context()`` on the result, so an engine
TensorRT refuses (None) surfaces as AttributeError; dk turns it into a ModelError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dk.artifacts import Artifact
from dk.engine import Engine, InputChecker
from dk.errors import DeviceError, DkError, ModelError

REQUIRED_KEYS = ("engine", "input_names", "output_names")


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The TRTModule state dict in ``path``, read with ``weights_only=True`` and checked."""
    import pickle

    import torch

    try:
        state = torch.load(str(path), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ModelError(f"{path} is not a readable torch2trt state dict: {' '.join(str(exc).split())[:200]}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, Mapping) or k not in state]
    if missing:
        raise ModelError(f"{path} is not a TRTModule state dict (missing {', '.join(missing)}); re-export it")
    if not isinstance(state["engine"], (bytes, bytearray)) or not state["engine"]:
        raise ModelError(f"{path} holds no serialized engine; re-export it")
    return dict(state)


class Torch2trtEngine(Engine):
    """A TRTModule on CUDA: numpy in, numpy out."""

    def __init__(self, artifact: Artifact, device: str):
        import torch
        from torch2trt import TRTModule

        from dk_torch2trt.options import cuda_device

        if not torch.cuda.is_available():
            raise DeviceError("torch2trt engines run on CUDA, and torch sees no CUDA device here")
        self.name, self.precision = artifact.name, artifact.precision
        self.device = cuda_device(device)
        self.inputs, self.outputs = artifact.inputs, artifact.outputs
        self._check = InputChecker(self.inputs)
        state = read_state_dict(artifact.model_file)
        torch.cuda.set_device(self.device)  # TRTModule deserializes on the current device
        self.module = TRTModule()
        try:
            self.module.load_state_dict(state)
        except AttributeError:  # deserialize_cuda_engine returned None
            self.module = None
            raise ModelError(
                f"TensorRT refused the engine in {artifact.model_file} (built by another TensorRT version or for "
                "another GPU, or corrupt); re-export it here with --force"
            ) from None
        self._torch = torch

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.module is None:
            raise DkError("this torch2trt engine is closed; load the artifact again")
        self._check(inputs)
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(inputs[s.name])).to(self.device) for s in self.inputs]
        with torch.no_grad():
            result = self.module(*args)
        results = result if isinstance(result, (tuple, list)) else [result]
        return {s.name: r.float().cpu().numpy() for s, r in zip(self.outputs, results)}

    def close(self) -> None:
        self.module = None


def load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> Torch2trtEngine:
    from dk_torch2trt.doctor import require_usable
    from dk_torch2trt.options import LOAD_OPTIONS, check_options

    check_options(options, LOAD_OPTIONS, "load")
    if artifact.format != "torch2trt":
        raise ModelError(f"{artifact.path} holds a {artifact.format!r} model from plugin {artifact.plugin!r}, "
                         "not a torch2trt module")
    require_usable()
    return Torch2trtEngine(artifact, device)
