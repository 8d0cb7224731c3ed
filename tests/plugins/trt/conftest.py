"""Shared helpers for the trt plugin tests: none of them needs TensorRT unless it says so."""

from __future__ import annotations

import importlib.util

import pytest

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None


@pytest.fixture
def needs_tensorrt():
    """Skip unless TensorRT and pycuda are importable and a CUDA device answers."""
    if not HAS_TENSORRT:
        pytest.skip("needs TensorRT and pycuda (pip install tensorrt pycuda) and an NVIDIA GPU")
    from dk.errors import DkError
    from dk_trt.buffers import gpu_info

    try:
        return gpu_info(0)
    except DkError as exc:
        pytest.skip(f"TensorRT is installed but no CUDA device works here: {exc}")


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
