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
