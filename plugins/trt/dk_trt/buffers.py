"""Host and device memory for TensorRT engines, through the CUDA seam :mod:`dk_trt.cudart`
(cuda-python by default, pycuda where it is the one installed).

One :class:`DeviceBuffers` per engine: pinned host arrays and device allocations per tensor name
(grown when a bigger shape arrives), and one CUDA stream. Every call names its device, so the
buffers work from any thread.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from dk.errors import DeviceError

from dk_trt.plan import GpuInfo


def device_index(device: str) -> int:
    """``cuda`` -> 0, ``cuda:1`` -> 1; any other device is refused."""
    kind, _, index = device.strip().lower().partition(":")
    if kind not in ("cuda", "gpu", "tensorrt") or (index and not index.isdigit()):
        raise DeviceError(f"the trt plugin runs on cuda[:N] only, not {device!r}; add --device cuda")
    return int(index or 0)


def gpu_info(index: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``index``, or DeviceError saying why there is none."""
    from dk_trt.cudart import binding

    cuda = binding()
    count = cuda.device_count()
    if index >= count:
        raise DeviceError(f"CUDA device {index} does not exist (this machine has {count})")
    name, major, minor = cuda.device_facts(index)
    return GpuInfo(name, f"{major}.{minor}", index)


def select_device(index: int) -> None:
    """Make CUDA device ``index`` current on this thread: TensorRT builds and deserializes there."""
    from dk_trt.cudart import binding

    binding().select(index)


class DeviceBuffers:
    """Pinned host memory, device memory and a stream for one engine on CUDA device ``index``."""

    def __init__(self, index: int = 0):
        from dk_trt.cudart import binding

        self.index = index
        self._cuda = binding()
        self._lock = threading.Lock()
        self._stream = self._cuda.stream_create(index)
        self._device: dict[str, tuple[int, int]] = {}
        self._host: dict[str, tuple[Any, np.ndarray]] = {}

    @property
    def stream_handle(self) -> int:
        return self._cuda.stream_handle(self._stream)

    def device_ptr(self, name: str, nbytes: int) -> int:
        """A device allocation of at least ``nbytes`` for tensor ``name``."""
        with self._lock:
            held = self._device.get(name)
            if held is None or held[1] < nbytes:
                if held is not None:
                    self._cuda.free(self.index, held[0])
                held = (self._cuda.malloc(self.index, max(nbytes, 1)), nbytes)
                self._device[name] = held
            return held[0]

    def _pinned(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        held = self._host.get(name)
        if held is None or held[1].nbytes < nbytes:
            if held is not None:
                self._cuda.host_free(self.index, held[0])
            held = self._cuda.host_empty(self.index, max(nbytes, 1))
            self._host[name] = held
        return held[1][:nbytes].view(dtype).reshape(shape)

    def upload(self, name: str, array: np.ndarray) -> int:
        """Queue the copy of ``array`` to the device (through pinned memory, on the stream); return its
        pointer. The copy is done after :meth:`synchronize`."""
        staged = self._pinned(name, array.shape, array.dtype)
        np.copyto(staged, array)
        ptr = self.device_ptr(name, staged.nbytes)
        self._cuda.copy_htod_async(self.index, ptr, staged, self._stream)
        return ptr

    def download(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Queue the copy of device tensor ``name`` to pinned memory; valid after :meth:`synchronize`."""
        staged = self._pinned(name, shape, np.dtype(dtype))
        self._cuda.copy_dtoh_async(self.index, staged, self._device[name][0], self._stream)
        return staged

    def synchronize(self) -> None:
        self._cuda.stream_sync(self.index, self._stream)

    def close(self) -> None:
        """Free everything. Safe to call twice, and from any thread."""
        if self._stream is None:
            return
        self._cuda.stream_sync(self.index, self._stream)
        for ptr, _ in self._device.values():
            self._cuda.free(self.index, ptr)
        for handle, _ in self._host.values():
            self._cuda.host_free(self.index, handle)
        self._device.clear()
        self._host.clear()
        self._cuda.stream_destroy(self.index, self._stream)
        self._stream = None
