"""Deserialized engines and inference through named I/O tensors (TensorRT 10+ API).

:func:`deserialize` is the one TensorRT call of plan reading: :mod:`dk_trt.plan` checks everything
that can be checked without TensorRT first.

API facts (NVIDIA/TensorRT python/src/infer/pyCore.cpp, release/10.0 ccf11997 to main a892d222):
``set_input_shape``, ``set_tensor_address`` and ``set_output_allocator`` return bool;
``IOutputAllocator``'s Python overrides are ``reallocate_output`` (required), ``reallocate_output_async``
(optional, falls back to the former) and ``notify_shape``; ``Runtime.DLA_core`` is a property. Every
output gets an output allocator, as Polygraphy's TrtRunner does (tools/Polygraphy/polygraphy/backend/
trt/runner.py, release/10.16 9973b2f4), so outputs whose shape depends on the data (-1 after the input
shapes are set) get memory of the size TensorRT asks for and the shape it reports.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from dk.artifacts import Artifact
from dk.engine import Engine, InputChecker
from dk.errors import DkError, ModelError
from dk.specs import TensorSpec

from dk_trt.buffers import DeviceBuffers, device_index, select_device
from dk_trt.options import LOAD_OPTIONS, check_known
from dk_trt.plan import PlanError, read_artifact_plan
from dk_trt.versions import installed_version, require_tensorrt


def deserialize(data: bytes, where: str, dla_core: int | None = None) -> tuple[Any, Any]:
    """(runtime, ICudaEngine) from plan bytes, or :class:`PlanError` when TensorRT refuses them
    (another TensorRT version, another GPU, wrong magic, truncated: deserialize returns None).
    ``dla_core``: the DLA core a DLA engine was built for, set on the runtime before deserializing."""
    trt = require_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    if dla_core is not None:
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise PlanError(
            f"TensorRT {trt.__version__} cannot deserialize {where} (built by another TensorRT version or for "
            "another GPU, or corrupt); re-export it here with --force"
        )
    return runtime, engine


def runtime_device(device: str) -> int:
    """The CUDA device index; ``cpu`` (the CLI's default) means the first GPU: TensorRT has no CPU."""
    return 0 if device.strip().lower() in ("", "cpu") else device_index(device)


def io_specs(trt: Any, engine: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input/output specs of an engine; dynamic dims (-1) are named and bounded by profile 0."""
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(engine.get_tensor_shape(name))
        dims = tuple(f"dim{axis}" if d < 0 else int(d) for axis, d in enumerate(shape))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            lo = hi = None
            if any(d < 0 for d in shape):
                lo, _, hi = (tuple(int(v) for v in s) for s in engine.get_tensor_profile_shape(name, 0))
            inputs.append(TensorSpec(name, dims, dtype, lo, hi))
        else:
            outputs.append(TensorSpec(name, dims, dtype))
    return inputs, outputs


class TrtEngine(Engine):
    """An execution context with its own stream and buffers; ``infer`` sets input shapes and
    tensor addresses by name and calls ``execute_async_v3``."""

    def __init__(self, artifact: Artifact, device: str):
        trt = require_tensorrt()
        index = runtime_device(device)
        self.name, self.device, self.precision = artifact.name, f"cuda:{index}", artifact.precision
        select_device(index)
        self.buffers = DeviceBuffers(index)
        try:
            data = read_artifact_plan(artifact, installed_version())
            dla_core = artifact.manifest.get("extra", {}).get("dla_core")
            self._runtime, self.engine = deserialize(data, str(artifact.model_file), dla_core)
            self.context = self.engine.create_execution_context()
        except BaseException:
            self.buffers.close()
            raise
        self.inputs, self.outputs = io_specs(trt, self.engine)
        self._allocator = output_allocator(trt, self.buffers)
        self._check = InputChecker(self.inputs)
        self._out_dtypes = {s.name: np.dtype(s.dtype) for s in self.outputs}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.context is None:
            raise DkError("this trt engine is closed; load the artifact again")
        self._check(inputs)
        return self.execute(self.context, inputs)

    def profile_layers(self, feeds: Mapping[str, np.ndarray], runs: int = 10) -> list[dict[str, Any]]:
        """Per-layer times of ``runs`` runs of ``feeds``, slowest first, like ``trtexec --dumpProfile``:
        rows ``{"layer", "mean_ms", "total_ms", "percent", "calls"}``."""
        import attrs

        from dk_trt.profile import profile_layers

        if self.context is None:
            raise DkError("this trt engine is closed; load the artifact again")
        self._check(feeds)
        return [attrs.asdict(row) for row in profile_layers(self, feeds, runs)]

    def execute(self, context: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked ``inputs`` on execution ``context`` (this engine's own, or a profiling one)."""
        buffers, allocator = self.buffers, self._allocator
        for name, array in inputs.items():
            if not context.set_input_shape(name, array.shape):
                raise ModelError(f"TensorRT refused shape {list(array.shape)} for input {name!r} of {self.name}")
            ptr = buffers.upload(name, np.ascontiguousarray(array))
            if not context.set_tensor_address(name, ptr):
                raise ModelError(f"TensorRT refused the device address of input {name!r} of {self.name}")
        for name in self._out_dtypes:
            if not context.set_output_allocator(name, allocator):
                raise ModelError(f"TensorRT refused the output allocator for {name!r} of {self.name}")
        allocator.shapes.clear()
        if not context.execute_async_v3(buffers.stream_handle):
            raise ModelError(f"TensorRT failed to run {self.name} (execute_async_v3 returned False)")
        shapes = {name: allocator.shapes.get(name) or tuple(context.get_tensor_shape(name)) for name in self._out_dtypes}
        bad = {name: shape for name, shape in shapes.items() if any(d < 0 for d in shape)}
        if bad:
            raise ModelError(f"TensorRT reported no output shape for {sorted(bad)} of {self.name}")
        staged = {name: buffers.download(name, shapes[name], dtype) for name, dtype in self._out_dtypes.items()}
        buffers.synchronize()
        return {name: array.copy() for name, array in staged.items()}  # pinned buffers are reused

    def close(self) -> None:
        self.context = None
        self.engine = None
        self._runtime = None
        if self.buffers is not None:
            self.buffers.close()
            self.buffers = None


def output_allocator(trt: Any, buffers: DeviceBuffers) -> Any:
    """An ``IOutputAllocator`` handing out ``buffers``' device memory per output and recording the
    shape TensorRT reports for each (data-dependent shapes are known only then)."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            return buffers.device_ptr(tensor_name, int(size))  # cudaMalloc memory is 256-byte aligned

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int) -> int:
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return OutputAllocator()


def load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> TrtEngine:
    """Open a trt artifact; other formats are refused with the plugin to use."""
    check_known(options, LOAD_OPTIONS, "load")
    if artifact.format != "tensorrt":
        raise ModelError(
            f"the trt plugin runs TensorRT plans; {artifact.path} holds a {artifact.format!r} model from plugin "
            f"{artifact.plugin!r}: build a plan with 'dk run export --plugin trt --model {artifact.path}'"
        )
    return TrtEngine(artifact, device)
