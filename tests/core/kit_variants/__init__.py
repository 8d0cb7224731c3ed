"""Small in-process backends for proving the conformance kit: ``good`` is correct, each other
one breaks exactly one rule (see tests/core/test_conformance_kit.py)."""
