"""Host and device memory for TensorRT engines, through pycuda. The only module of dk_trt that
touches CUDA memory: swap it for cuda-python or torch tensors and nothing else changes.

One :class:`DeviceBuffers` per engine: pinned host arrays and device allocations per tensor name
(grown when a bigger shape arrives), and one CUDA stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dk.errors import DeviceError, MissingDependency

from dk_trt.plan import GpuInfo


def _cuda() -> Any:
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise MissingDependency(f"the trt plugin moves tensors with pycuda ({exc}): pip install pycuda") from None
    try:
        cuda.init()
    except cuda.Error as exc:
        raise DeviceError(f"CUDA is not usable here ({exc}); the trt plugin needs an NVIDIA GPU and driver") from None
    return cuda


def device_index(device: str) -> int:
    """``cuda`` -> 0, ``cuda:1`` -> 1; any other device is refused."""
    kind, _, index = device.strip().lower().partition(":")
    if kind not in ("cuda", "gpu", "tensorrt") or (index and not index.isdigit()):
        raise DeviceError(f"the trt plugin runs on cuda[:N] only, not {device!r}; add --device cuda")
    return int(index or 0)


def gpu_info(index: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``index``."""
    cuda = _cuda()
    if index >= cuda.Device.count():
        raise DeviceError(f"CUDA device {index} does not exist (this machine has {cuda.Device.count()})")
    dev = cuda.Device(index)
    major, minor = dev.compute_capability()
    return GpuInfo(dev.name(), f"{major}.{minor}", index)


class DeviceBuffers:
    """Pinned host memory, device memory and a stream for one engine on CUDA device ``index``."""

    def __init__(self, index: int = 0):
        cuda = _cuda()
        self._cuda = cuda
        self._context = cuda.Device(index).retain_primary_context()  # the context TensorRT uses
        self._context.push()
        self.stream = cuda.Stream()
        self._device: dict[str, tuple[Any, int]] = {}
        self._host: dict[str, np.ndarray] = {}

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def device_ptr(self, name: str, nbytes: int) -> int:
        """A device allocation of at least ``nbytes`` for tensor ``name``."""
        held = self._device.get(name)
        if held is None or held[1] < nbytes:
            if held is not None:
                held[0].free()
            allocation = self._cuda.mem_alloc(max(nbytes, 1))
            held = (allocation, nbytes)
            self._device[name] = held
        return int(held[0])

    def _pinned(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        host = self._host.get(name)
        size = int(np.prod(shape, dtype=np.int64))
        if host is None or host.dtype != dtype or host.size < size:
            host = self._cuda.pagelocked_empty(max(size, 1), dtype)
            self._host[name] = host
        return host[:size].reshape(shape)

    def upload(self, name: str, array: np.ndarray) -> int:
        """Copy ``array`` to the device (through pinned memory, on the stream); return its pointer."""
        staged = self._pinned(name, array.shape, array.dtype)
        np.copyto(staged, array)
        ptr = self.device_ptr(name, staged.nbytes)
        self._cuda.memcpy_htod_async(ptr, staged, self.stream)
        return ptr

    def download(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Queue the copy of device tensor ``name`` to pinned memory; valid after :meth:`synchronize`."""
        staged = self._pinned(name, shape, np.dtype(dtype))
        self._cuda.memcpy_dtoh_async(staged, self._device[name][0], self.stream)
        return staged

    def synchronize(self) -> None:
        self.stream.synchronize()

    def close(self) -> None:
        """Free everything and release the context. Safe to call twice."""
        if self._context is None:
            return
        for allocation, _ in self._device.values():
            allocation.free()
        self._device.clear()
        self._host.clear()
        self.stream = None
        self._context.pop()
        self._context.detach()
        self._context = None
