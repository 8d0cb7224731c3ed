"""The CUDA seam (dk_trt.cudart, dk_trt.buffers): which binding is chosen, what it says without a GPU,
and, on a machine with an NVIDIA GPU and cuda-python, real allocation, copies both ways, stream sync,
use from other threads and device selection (those skip here with the reason)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dk.errors import DeviceError, MissingDependency
from dk_trt import cudart
from dk_trt.buffers import DeviceBuffers, gpu_info
from dk_trt.versions import no_gpu_reason


@pytest.mark.parametrize("importable, chosen", [
    ({"cuda.bindings", "pycuda"}, "cuda-python"),
    ({"cuda.cudart"}, "cuda-python"),  # cuda-python before 12.8
    ({"pycuda"}, "pycuda"),
    (set(), None),
])
def test_cuda_python_is_chosen_first_and_pycuda_only_when_it_is_the_one_installed(monkeypatch, importable, chosen):
    monkeypatch.setattr(cudart, "_find", lambda module: module in importable)
    assert cudart.installed_binding() == chosen


def test_no_binding_is_one_error_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(cudart, "_find", lambda module: False)
    monkeypatch.setattr(cudart, "_BINDING", None)
    with pytest.raises(MissingDependency, match=r"a CUDA binding: pip install cuda-bindings"):
        cudart.binding()


def test_cuda_python_without_a_driver_says_why():
    """Real cuda-python (cuda-bindings) on a machine without an NVIDIA driver: the runtime API answers
    with an error code (cudaErrorInsufficientDriver with cuda-bindings 13.5), which becomes DeviceError."""
    pytest.importorskip("cuda.bindings", reason="needs cuda-python: pip install cuda-bindings")
    if no_gpu_reason() is None:
        pytest.skip("an NVIDIA driver is installed here")
    if cudart.installed_binding() != cudart.CUDA_PYTHON:
        pytest.skip("cuda-python is not the binding chosen here")
    with pytest.raises(DeviceError, match=r"^CUDA cudaGetDeviceCount failed: cudaError\w+ \(.+\)$"):
        gpu_info(0)


def test_gpu_round_trip_through_pinned_memory(needs_gpu):
    buffers = DeviceBuffers(needs_gpu.index)
    try:
        data = np.arange(3 * 5, dtype=np.float32).reshape(3, 5)
        buffers.upload("x", data)
        out = buffers.download("x", (3, 5), np.float32)
        buffers.synchronize()
        assert np.array_equal(out, data)
        ints = np.arange(7, dtype=np.int64) * -3  # another dtype and a bigger buffer under the same name
        buffers.upload("x", ints)
        back = buffers.download("x", (7,), np.int64)
        buffers.synchronize()
        assert back.tolist() == ints.tolist()
    finally:
        buffers.close()
    buffers.close()  # twice is fine


def test_buffers_made_on_one_thread_work_and_close_on_others(needs_gpu):
    buffers = DeviceBuffers(needs_gpu.index)
    results, errors = {}, []

    def infer() -> None:
        try:
            buffers.upload("x", np.full((4,), 2.5, np.float32))
            staged = buffers.download("x", (4,), np.float32)
            buffers.synchronize()
            results["x"] = staged.tolist()
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=infer)
    worker.start()
    worker.join()
    closer = threading.Thread(target=buffers.close)
    closer.start()
    closer.join()
    assert errors == [] and results["x"] == [2.5] * 4


def test_device_1_is_selected_when_present(needs_gpu):
    count = cudart.binding().device_count()
    if count < 2:
        pytest.skip(f"needs two CUDA devices, this machine has {count}")
    info = gpu_info(1)
    buffers = DeviceBuffers(1)
    try:
        buffers.upload("y", np.ones(8, np.float16))
        out = buffers.download("y", (8,), np.float16)
        buffers.synchronize()
        assert info.index == 1 and out.tolist() == [1.0] * 8
    finally:
        buffers.close()


def test_every_cuda_python_call_of_the_seam_exists_in_the_installed_cuda_bindings():
    """Names, read from the seam's source, against the real cuda-python module (no GPU needed)."""
    import ast
    import inspect

    runtime = pytest.importorskip("cuda.bindings.runtime", reason="needs cuda-python: pip install cuda-bindings")
    tree = ast.parse(inspect.getsource(cudart.CudaPython))
    called = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Attribute) and node.value.attr == "_rt"}
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamSynchronize", "cudaSetDevice"} <= called
    assert sorted(n for n in called if not hasattr(runtime, n)) == []
    kinds = runtime.cudaMemcpyKind
    assert int(kinds.cudaMemcpyHostToDevice) == 1 and int(kinds.cudaMemcpyDeviceToHost) == 2
    assert int(runtime.cudaStream_t(0)) == 0 and isinstance(runtime.cudaDeviceProp().name, bytes)
