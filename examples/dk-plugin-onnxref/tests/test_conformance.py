"""The example plugin passes dk's conformance kit, as any third-party backend should."""

from dk.testing import BackendConformance


class TestOnnxrefConformance(BackendConformance):
    plugin = "onnxref"
    precisions = ("fp32",)
    parity_max_examples = 10  # the reference evaluator is slow; a few graphs suffice here
