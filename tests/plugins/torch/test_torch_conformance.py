"""The torch plugin against dk's backend conformance kit (fp32; it reads torch models, not ONNX)."""

from __future__ import annotations

from dk.testing import BackendConformance


class TestTorchConformance(BackendConformance):
    plugin = "torch"
    precisions = ("fp32",)  # fp16 is an engine option on cuda, not an export precision
    consumes_onnx = False
    engine_reads_model_file = False  # the engine rebuilds the nn.Module from the recorded source
