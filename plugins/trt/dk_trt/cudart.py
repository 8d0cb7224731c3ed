"""The one seam between dk_trt and CUDA: device count and facts, device selection, device and pinned
host memory, streams, asynchronous copies and stream sync.

Two bindings implement it, chosen by what is installed:

- **cuda-python** (``pip install cuda-bindings``; NVIDIA's wheels, no toolkit build; TensorRT's own
  samples use it from 10.13 on), the default. It calls the CUDA *runtime* API, whose current device
  is per thread and whose primary context is shared by every thread: each call selects its device
  first (``cudaSetDevice``), so a :class:`~dk_trt.buffers.DeviceBuffers` made on one thread can be
  used and closed on any other (``dk serve`` loads, infers and closes on different threads).
- **pycuda**, the alternative when it is the one installed. pycuda contexts are per thread, so every
  call pushes the device's primary context and pops it again.

API facts: cuda-python's ``cuda.bindings.runtime`` (``cuda.cudart`` before cuda-python 12.8) returns
``(cudaError_t, *values)`` from every function (https://nvidia.github.io/cuda-python/cuda-bindings/,
checked against cuda-bindings 13.5.0 here: without an NVIDIA driver ``cudaGetDeviceCount`` returns
``cudaErrorInsufficientDriver``); pycuda's ``Device.retain_primary_context``, ``Context.push/pop``,
``mem_alloc``, ``pagelocked_empty`` and ``memcpy_*_async`` are pycuda 2024/2025's documented driver API.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from typing import Any

import numpy as np

from dk.errors import DeviceError, MissingDependency

#: Binding names, in order of preference.
CUDA_PYTHON, PYCUDA = "cuda-python", "pycuda"
INSTALL_HINT = "pip install cuda-bindings (NVIDIA's cuda-python wheels; pycuda also works where it is installed)"


def installed_binding() -> str | None:
    """``cuda-python`` or ``pycuda``, whichever is importable (cuda-python first), from find_spec only."""
    if _find("cuda.bindings") or _find("cuda.cudart"):
        return CUDA_PYTHON
    if _find("pycuda"):
        return PYCUDA
    return None


def _find(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


_BINDING: Any = None
_LOCK = threading.Lock()


def binding() -> Any:
    """The process's CUDA binding (made once, shared by every thread), or MissingDependency."""
    global _BINDING
    with _LOCK:
        if _BINDING is None:
            name = installed_binding()
            if name is None:
                raise MissingDependency(f"the trt plugin moves tensors with a CUDA binding: {INSTALL_HINT}")
            _BINDING = CudaPython() if name == CUDA_PYTHON else PyCuda()
        return _BINDING


class CudaPython:
    """The seam through cuda-python's CUDA runtime API."""

    name = CUDA_PYTHON

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime
        except ImportError:  # cuda-python before 12.8
            from cuda import cudart as runtime
        self._rt = runtime
        self._h2d = runtime.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._d2h = runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self._rt.cudaGetErrorString(err)
            raise DeviceError(f"CUDA {what} failed: {getattr(err, 'name', err)} ({_text(text)})")
        return values[0] if len(values) == 1 else values

    def device_count(self) -> int:
        return int(self._check(self._rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))

    def device_facts(self, index: int) -> tuple[str, int, int]:
        prop = self._check(self._rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        return _text(prop.name), int(prop.major), int(prop.minor)

    def select(self, index: int) -> None:
        self._check(self._rt.cudaSetDevice(index), f"cudaSetDevice({index})")

    def malloc(self, index: int, nbytes: int) -> int:
        self.select(index)
        return int(self._check(self._rt.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))

    def free(self, index: int, ptr: int) -> None:
        self.select(index)
        self._check(self._rt.cudaFree(ptr), "cudaFree")

    def host_empty(self, index: int, nbytes: int) -> tuple[Any, np.ndarray]:
        """(handle, pinned uint8 array of ``nbytes``); give the handle to :meth:`host_free`."""
        self.select(index)
        ptr = int(self._check(self._rt.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        return ptr, np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))

    def host_free(self, index: int, handle: Any) -> None:
        self.select(index)
        self._check(self._rt.cudaFreeHost(handle), "cudaFreeHost")

    def stream_create(self, index: int) -> Any:
        self.select(index)
        return self._check(self._rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_sync(self, index: int, stream: Any) -> None:
        self.select(index)
        self._check(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, index: int, stream: Any) -> None:
        self.select(index)
        self._check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def copy_htod_async(self, index: int, dst: int, src: np.ndarray, stream: Any) -> None:
        self.select(index)
        self._check(self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, self._h2d, stream), "cudaMemcpyAsync")

    def copy_dtoh_async(self, index: int, dst: np.ndarray, src: int, stream: Any) -> None:
        self.select(index)
        self._check(self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, self._d2h, stream), "cudaMemcpyAsync")


class PyCuda:
    """The seam through pycuda: every call runs with the device's primary context pushed."""

    name = PYCUDA

    def __init__(self) -> None:
        import pycuda.driver as cuda

        try:
            cuda.init()
        except cuda.Error as exc:
            raise DeviceError(f"CUDA is not usable here ({exc}); the trt plugin needs an NVIDIA GPU and driver") from None
        self._cuda = cuda
        self._contexts: dict[int, Any] = {}
        self._allocations: dict[int, Any] = {}

    def _context(self, index: int) -> Any:
        with _LOCK:
            if index not in self._contexts:
                self._contexts[index] = self._cuda.Device(index).retain_primary_context()  # TensorRT's context
            return self._contexts[index]

    def _run(self, index: int, call: Any, *args: Any) -> Any:
        context = self._context(index)
        context.push()
        try:
            return call(*args)
        except self._cuda.Error as exc:
            raise DeviceError(f"CUDA call {getattr(call, '__name__', call)} failed: {exc}") from None
        finally:
            self._cuda.Context.pop()

    def device_count(self) -> int:
        return int(self._cuda.Device.count())

    def device_facts(self, index: int) -> tuple[str, int, int]:
        dev = self._cuda.Device(index)
        major, minor = dev.compute_capability()
        return dev.name(), int(major), int(minor)

    def select(self, index: int) -> None:
        """TensorRT runs through the CUDA runtime API, which uses the primary context of the runtime's
        current device (0) when no context is current; pycuda cannot set that device, and keeping a
        context pushed is what breaks across threads. So with pycuda only GPU 0 can be selected."""
        if index != 0:
            raise DeviceError(f"cuda:{index}: with pycuda dk runs TensorRT on GPU 0 only; pip install cuda-bindings "
                              "to select another GPU")
        self._context(index)  # retained: the primary context TensorRT will use

    def malloc(self, index: int, nbytes: int) -> int:
        allocation = self._run(index, self._cuda.mem_alloc, nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, index: int, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            self._run(index, allocation.free)

    def host_empty(self, index: int, nbytes: int) -> tuple[Any, np.ndarray]:
        array = self._run(index, self._cuda.pagelocked_empty, nbytes, np.uint8)
        return array, array

    def host_free(self, index: int, handle: Any) -> None:
        base = getattr(handle, "base", None)
        if base is not None and hasattr(base, "free"):
            self._run(index, base.free)

    def stream_create(self, index: int) -> Any:
        return self._run(index, self._cuda.Stream)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, index: int, stream: Any) -> None:
        self._run(index, stream.synchronize)

    def stream_destroy(self, index: int, stream: Any) -> None:
        """Nothing to do: pycuda destroys the stream when its object is collected."""

    def copy_htod_async(self, index: int, dst: int, src: np.ndarray, stream: Any) -> None:
        self._run(index, self._cuda.memcpy_htod_async, dst, src, stream)

    def copy_dtoh_async(self, index: int, dst: np.ndarray, src: int, stream: Any) -> None:
        self._run(index, self._cuda.memcpy_dtoh_async, dst, src, stream)


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).split(b"\x00", 1)[0].decode(errors="replace")
    return str(value)
