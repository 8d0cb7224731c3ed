"""NVML through nvidia-ml-py (``pynvml``): one process-wide session, per-GPU samples.

Metrics an NVIDIA GPU or driver does not support (``NVMLError_NotSupported``) are dropped for
that GPU after the first try, so sampling stays cheap.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import Any

from dk.specs import HwSample

INSTALL = "pip install 'dk-plugin-cuda[nvml]' (nvidia-ml-py)"


class NvmlUnavailable(Exception):
    """NVML cannot be used here; ``status`` is ``missing-dependency`` or ``no-device``."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def nvml_installed() -> bool:
    return importlib.util.find_spec("pynvml") is not None


def cuda_target(major: int, minor: int) -> str:
    """``cuda-sm90`` for compute capability 9.0, ``cuda-sm87`` for a Jetson Orin's 8.7."""
    return f"cuda-sm{int(major)}{int(minor)}"


class NvmlSession:
    """An initialised NVML with the handles of every GPU."""

    def __init__(self) -> None:
        if not nvml_installed():
            raise NvmlUnavailable("missing-dependency", f"needs nvidia-ml-py: {INSTALL}")
        import pynvml

        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound:
            raise NvmlUnavailable("no-device", "no NVML library (libnvidia-ml.so.1 not found): "
                                  "no NVIDIA driver on this machine") from None
        except pynvml.NVMLError_DriverNotLoaded:
            raise NvmlUnavailable("no-device", "the NVIDIA driver is not loaded (is there an NVIDIA GPU?)") from None
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable("no-device", f"NVML failed to start: {exc}") from None
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            raise NvmlUnavailable("no-device", "no NVIDIA GPU: NVML sees 0 devices")
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._unsupported: set[tuple[int, str]] = set()

    def facts(self) -> dict[str, Any]:
        """GPU names and memory, driver and CUDA driver versions."""
        n = self.nvml
        gpus = []
        for handle in self.handles:
            name = n.nvmlDeviceGetName(handle)
            memory = n.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(f"{name.decode() if isinstance(name, bytes) else name} ({memory.total / 2**30:.0f} GiB)")
        driver = n.nvmlSystemGetDriverVersion()
        cuda = n.nvmlSystemGetCudaDriverVersion()
        return {"gpus": gpus, "driver": driver.decode() if isinstance(driver, bytes) else driver,
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}"}

    def targets(self) -> list[str]:
        """Fleet target tags, one per distinct compute capability: ``cuda-sm90`` for an H100."""
        tags: list[str] = []
        for handle in self.handles:
            try:
                major, minor = self.nvml.nvmlDeviceGetCudaComputeCapability(handle)
            except self.nvml.NVMLError:
                continue
            tag = cuda_target(major, minor)
            if tag not in tags:
                tags.append(tag)
        return tags

    def sample(self) -> list[HwSample]:
        """Utilisation, memory, temperature, power and the total energy counter of every GPU."""
        n = self.nvml
        now = time.time()
        samples: list[HwSample] = []
        readers = (
            ("util", "%", lambda h: n.nvmlDeviceGetUtilizationRates(h).gpu),
            ("mem_util", "%", lambda h: n.nvmlDeviceGetUtilizationRates(h).memory),
            ("mem_used", "MiB", lambda h: n.nvmlDeviceGetMemoryInfo(h).used / 2**20),
            ("temp", "C", lambda h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            ("power", "W", lambda h: n.nvmlDeviceGetPowerUsage(h) / 1000.0),
            ("energy", "J", lambda h: n.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0),
        )
        for index, handle in enumerate(self.handles):
            for metric, unit, read in readers:
                if (index, metric) in self._unsupported:
                    continue
                try:
                    value = float(read(handle))
                except (n.NVMLError_NotSupported, n.NVMLError_FunctionNotFound):
                    self._unsupported.add((index, metric))
                    continue
                samples.append(HwSample(f"gpu{index}.{metric}", value, unit, now, "cuda"))
        return samples


_lock = threading.Lock()
_session: NvmlSession | None = None
_failure: NvmlUnavailable | None = None


def session() -> NvmlSession:
    """The process-wide NVML session (started once); raises :class:`NvmlUnavailable`."""
    global _session, _failure
    with _lock:
        if _session is None and _failure is None:
            try:
                _session = NvmlSession()
            except NvmlUnavailable as exc:
                _failure = exc
        if _failure is not None:
            raise _failure
        return _session  # type: ignore[return-value]
