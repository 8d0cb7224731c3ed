"""Doctor statuses of the trt plugin from its availability facts (TensorRT importable, a CUDA
binding, NVIDIA driver files), monkeypatched: ``missing-dependency``, ``no-device`` (TensorRT but no
GPU, cheap and with --probe) and the conformance kit skipping with that status."""

from __future__ import annotations

import functools

import pytest

from dk_trt import doctor, versions
from dk_trt.cudart import CUDA_PYTHON


@pytest.fixture
def tensorrt_installed(monkeypatch):
    """TensorRT and cuda-python reported importable (find_spec facts only)."""
    monkeypatch.setattr(versions, "trt_importable", lambda: True)
    monkeypatch.setattr("dk_trt.cudart.installed_binding", lambda: CUDA_PYTHON)


def test_tensorrt_without_a_gpu_is_no_device(monkeypatch, tmp_path, tensorrt_installed):
    monkeypatch.setattr(doctor, "no_gpu_reason", functools.partial(versions.no_gpu_reason, tmp_path))
    info = doctor.describe(probe=False)
    assert (info.available, info.status) == (False, "no-device")
    assert info.reason.startswith("no NVIDIA GPU driver here") and info.details["cuda_binding"] == "cuda-python"


def test_missing_binding_is_missing_dependency(monkeypatch):
    monkeypatch.setattr(versions, "trt_importable", lambda: True)
    monkeypatch.setattr("dk_trt.cudart.installed_binding", lambda: None)
    info = doctor.describe(probe=False)
    assert (info.status, info.reason) == ("missing-dependency", f"needs cuda-bindings: {versions.INSTALL_HINT}")


def test_probe_asks_the_gpu_before_tensorrt(monkeypatch, tmp_path, tensorrt_installed):
    """Driver files present but no device answering: --probe says no-device with CUDA's reason."""
    from dk.errors import DeviceError

    monkeypatch.setattr(doctor, "no_gpu_reason", lambda: None)

    def no_gpu(index: int = 0):
        raise DeviceError("CUDA cudaGetDeviceCount failed: cudaErrorNoDevice (no CUDA-capable device is detected)")

    monkeypatch.setattr("dk_trt.buffers.gpu_info", no_gpu)
    info = doctor.describe(probe=True)
    assert (info.available, info.status) == (False, "no-device") and "cudaErrorNoDevice" in info.reason


def test_conformance_kit_skips_with_no_device(monkeypatch, tmp_path, tensorrt_installed):
    from dk.testing.conformance import require_plugin

    monkeypatch.setattr(doctor, "no_gpu_reason", functools.partial(versions.no_gpu_reason, tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"unavailable \(no-device\): no NVIDIA GPU driver here"):
        require_plugin("trt")
