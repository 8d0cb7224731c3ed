"""The ort plugin against dk's backend conformance kit."""

from dk.testing import BackendConformance


class TestOrtConformance(BackendConformance):
    plugin = "ort"
    precisions = ("fp32", "fp16", "int8")
