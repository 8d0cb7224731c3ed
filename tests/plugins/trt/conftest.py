"""Shared helpers for the trt plugin tests: none of them needs TensorRT unless it says so."""

from __future__ import annotations

import importlib.util

import pytest

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def cuda_gpu():
    """GpuInfo of CUDA device 0 through the CUDA seam, or skip saying why there is none."""
    from dk.errors import DkError
    from dk_trt.buffers import gpu_info
    from dk_trt.cudart import installed_binding

    if installed_binding() is None:
        pytest.skip("needs a CUDA binding (pip install cuda-bindings) and an NVIDIA GPU")
    try:
        return gpu_info(0)
    except DkError as exc:
        pytest.skip(f"no CUDA device works here: {exc}")


@pytest.fixture
def needs_gpu():
    """Skip unless the CUDA seam finds a working CUDA device (no TensorRT needed)."""
    return cuda_gpu()


@pytest.fixture
def needs_tensorrt():
    """Skip unless TensorRT and a CUDA binding are importable and a CUDA device answers."""
    if not HAS_TENSORRT:
        pytest.skip("needs TensorRT and cuda-bindings (pip install tensorrt cuda-bindings) and an NVIDIA GPU")
    return cuda_gpu()


def _fake_jetson(root, model: bytes | None, tegra: bool = True, dla: int = 0, dla_dir: str = "platform/13e40000.host1x"):
    """A filesystem root that looks like a Jetson: device-tree model, L4T release file, and ``dla``
    nvdla platform devices (Orin's sysfs layout by default)."""
    from pathlib import Path

    root = Path(root)
    if model is not None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model)
    if tegra:
        (root / "etc").mkdir(parents=True)
        (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 3.0\n")
    for i, address in zip(range(dla), ("15880000", "158c0000")):
        (root / "sys/devices" / dla_dir / f"{address}.nvdla{i}").mkdir(parents=True)
    (root / "sys/devices/platform/17000000.gpu").mkdir(parents=True)
    return root


@pytest.fixture
def fake_jetson():
    """Builds fake Jetson filesystem roots: ``fake_jetson(tmp_path / "orin", b"NVIDIA Jetson AGX Orin", dla=2)``."""
    return _fake_jetson
