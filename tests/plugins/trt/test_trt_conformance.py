"""The conformance kit against the trt plugin: runs where TensorRT, a CUDA binding and a GPU exist,
and skips with the reason everywhere else (missing-dependency, or no-device without a GPU)."""

from __future__ import annotations

from dk.testing import BackendConformance


class TestTrtConformance(BackendConformance):
    plugin = "trt"
    precisions = ("fp32", "fp16")
    device = "cuda"
    heavy_modules = ("torch", "tensorrt", "openvino", "onnxruntime", "pycuda", "cuda.bindings")
