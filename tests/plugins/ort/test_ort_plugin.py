"""Registration, dk_describe, and cheap plugin import."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime

from dk import api
from dk.plugins import get_plugin_manager


def test_ort_plugin_is_registered_with_every_stage():
    manager = get_plugin_manager()
    record = manager.get("ort")
    assert record.distribution == "dk-plugin-ort" and record.status == "ok"
    for hook in ("dk_describe", "dk_export", "dk_quantize", "dk_load_engine"):
        assert manager.implements("ort", hook)


def test_describe_without_probe_is_cheap_and_complete():
    info = api.describe("ort", probe=False)
    assert (info.name, info.kind, info.available, info.status) == ("ort", "engine", True, "ok")
    assert info.formats_in == ["onnx"] and info.formats_out == ["onnx", "ort"]
    assert info.precisions == ["fp32", "fp16", "int8"]
    assert info.versions == {"onnxruntime": onnxruntime.__version__}
    assert "cpu" in info.devices


def test_describe_with_probe_lists_providers():
    info = api.describe("ort", probe=True)
    providers = onnxruntime.get_available_providers()
    assert info.details["providers"] == providers
    assert info.devices[0] == "cpu"
    assert ("cuda" in info.devices) == ("CUDAExecutionProvider" in providers)


def test_importing_the_plugin_imports_no_heavy_library():
    code = (
        "import sys, dk_ort.plugin; "
        "print(sorted(m for m in ('onnxruntime', 'onnx', 'torch', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
