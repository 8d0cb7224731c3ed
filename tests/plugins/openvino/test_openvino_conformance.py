"""The openvino plugin against dk's backend conformance kit: fp32, fp16 (compressed weights) and
NNCF int8, plus the Hypothesis parity tests against the ONNX reference and the torch engine."""

from __future__ import annotations

import pytest

pytest.importorskip("openvino", reason="the openvino plugin needs OpenVINO: pip install openvino nncf")
pytest.importorskip("nncf", reason="int8 with the openvino plugin needs NNCF: pip install nncf")

from dk.testing import BackendConformance  # noqa: E402


class TestOpenvinoConformance(BackendConformance):
    plugin = "openvino"
    precisions = ("fp32", "fp16", "int8")
    device = "CPU"


class TestOpenvinoThroughputConformance(BackendConformance):
    """The same checks with the engine in throughput mode (a pool of requests) and a lowercase device."""

    plugin = "openvino"
    precisions = ("fp32",)
    device = "cpu"
    load_options = {"mode": "throughput"}
    parity_max_examples = 5  # the parity search proper runs in the class above
