"""The torch reference engine: runs the torch model behind a torch-plugin artifact, not its ONNX."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from dk.artifacts import Artifact
from dk.engine import Engine, InputChecker
from dk.errors import DeviceError, DkError, ModelError
from dk.specs import ModelSource
from dk_torch.loading import load_module, source_sha256


class TorchEngine(Engine):
    """The torch module behind an artifact, on ``cpu`` or ``cuda[:N]``, in fp32 or (cuda) fp16."""

    name = "torch"

    def __init__(self, module: Any, artifact: Artifact, device: str, precision: str):
        import torch

        self.inputs = artifact.inputs
        self.outputs = artifact.outputs
        self.device = device
        self.precision = precision
        self._torch = torch
        self._device = torch.device(device)
        self._half = precision == "fp16"
        self._check = InputChecker(self.inputs)
        self._input_names = [s.name for s in self.inputs]
        self._out = [(s.name, np.dtype(s.dtype)) for s in self.outputs]
        self._module = module.to(self._device)
        if self._half:
            self._module = self._module.half()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate the feeds, run the module in inference mode, return arrays by output name."""
        if self._module is None:
            raise DkError("the torch engine is closed; load the artifact again")
        self._check(inputs)
        torch = self._torch
        with torch.inference_mode():
            args = []
            for name in self._input_names:
                array = inputs[name]
                if not (array.flags.writeable and array.flags.c_contiguous):
                    # from_numpy shares memory: it needs writable arrays without negative strides
                    array = np.array(array, order="C", copy=True)
                tensor = torch.from_numpy(array)
                if self._device.type != "cpu":
                    tensor = tensor.to(self._device, non_blocking=True)
                args.append(tensor.half() if self._half and tensor.is_floating_point() else tensor)
            try:
                results = _flatten(self._module(*args))
            except RuntimeError as exc:
                shapes = ", ".join(f"{n}:{list(inputs[n].shape)}" for n in self._input_names)
                raise ModelError(f"the torch model failed on {shapes}: {_first_line(exc)}") from exc
            if len(results) != len(self._out):
                raise ModelError(
                    f"the torch model returned {len(results)} output(s), but the artifact has "
                    f"{len(self._out)}; re-export it"
                )
            return {
                name: _to_numpy(t, dtype)
                for (name, dtype), t in zip(self._out, results, strict=True)
            }

    def close(self) -> None:
        """Drop the module and, on cuda, the cached GPU memory."""
        if self._module is None:
            return
        self._module = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()


def load_torch_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> TorchEngine:
    """Rebuild the torch model recorded in a torch-plugin artifact and open it on ``device``."""
    recipe = (artifact.manifest.get("extra") or {}).get("torch_source")
    if artifact.plugin != "torch" or not recipe:
        raise ModelError(
            f"artifact {artifact.path} was built by plugin {artifact.plugin!r}; the torch engine "
            "runs only artifacts exported by the torch plugin (open this one with --plugin "
            f"{artifact.plugin})"
        )
    precision = options.get("precision", "fp32")
    device = _check_device(device)
    if precision not in ("fp32", "fp16"):
        raise DkError(f"the torch engine runs precision fp32 or fp16, not {precision!r}")
    if precision == "fp16" and not device.startswith("cuda"):
        raise DkError("precision=fp16 in the torch engine needs --device cuda; use fp32 on the CPU")
    _set_threads(options.get("threads"))
    source = ModelSource(recipe["kind"], recipe["location"], recipe.get("weights"), recipe.get("root", ""))
    if source_sha256(source) != artifact.manifest["source"]["sha256"]:
        raise ModelError(
            f"the torch source of {artifact.path} ({source.location}) changed since it was "
            "exported; re-export the artifact"
        )
    return TorchEngine(load_module(source), artifact, device, precision)


def _set_threads(value: str | None) -> None:
    """Option ``threads=N``: torch's intra-op CPU threads (process-wide, as torch has no other)."""
    if value is None:
        return
    if not str(value).isdigit() or int(value) < 1:
        raise DkError(f"option threads must be a positive integer, not {value!r}")
    import torch

    torch.set_num_threads(int(value))


def _check_device(device: str) -> str:
    import torch

    device = (device or "cpu").strip().lower()
    if device == "cpu":
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"the torch engine runs on cpu, cuda or cuda:N, not {device!r}")
    if not torch.cuda.is_available():
        built = "is built without CUDA" if torch.version.cuda is None else "sees no GPU"
        why = f"torch {torch.__version__} {built}"
        raise DeviceError(f"CUDA is not available here ({why}); use --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"there is no {device}: torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _flatten(item)]
    if isinstance(result, dict):
        return [t for item in result.values() for t in _flatten(item)]
    return [result]


def _to_numpy(tensor: Any, dtype: np.dtype) -> np.ndarray:
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    array = tensor.numpy()
    return array if array.dtype == dtype else array.astype(dtype)
