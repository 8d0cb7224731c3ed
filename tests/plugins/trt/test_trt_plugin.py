"""Registration, doctor status without TensorRT, cheap imports, and a wheel that installs anywhere."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dk import api
from dk.plugins import get_plugin_manager
from tests.conftest import run_dk

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None

ROOT = Path(__file__).resolve().parents[3]
MODULES = ["dk_trt." + p.stem for p in (ROOT / "plugins/trt/dk_trt").glob("*.py") if p.stem != "__init__"]


def test_trt_plugin_is_registered_with_its_stages():
    manager = get_plugin_manager()
    record = manager.get("trt")
    assert record.distribution == "dk-plugin-trt" and record.module.startswith("dk_trt.plugin")
    for hook in ("dk_describe", "dk_export", "dk_quantize", "dk_load_engine"):
        assert manager.implements("trt", hook)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_doctor_says_missing_dependency_with_the_install_hint():
    info = api.describe("trt", probe=False)
    assert (info.available, info.status) == (False, "missing-dependency")
    assert "pip install tensorrt cuda-bindings" in info.reason and "NVIDIA" in info.reason
    assert info.formats_out == ["tensorrt"] and info.precisions == ["fp32", "fp16", "int8"]
    probed = api.describe("trt", probe=True)  # without TensorRT, --probe adds only the DLA count
    assert probed.status == "missing-dependency" and set(probed.details) == {"dla_cores", "dla_source"}


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_dk_doctor_json_lists_trt_as_missing_dependency():
    proc = run_dk("doctor", "--json", env_extra={"DK_LOAD_PLUGINS": "trt"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (trt,) = [p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "trt"]
    assert trt["status"] == "missing-dependency" and "pip install tensorrt" in trt["error"]


def test_importing_every_module_imports_no_heavy_library():
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('tensorrt', 'pycuda', 'cuda', 'torch', 'onnxruntime', 'modelopt', 'onnx') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert len(MODULES) >= 12


def test_wheel_builds_and_keeps_tensorrt_optional(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT / "plugins/trt")], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("dk_plugin_trt-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
        entry_points = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    always = [r for r in requires if "extra ==" not in r]
    assert not any(r.startswith(("tensorrt", "pycuda", "cuda-bindings", "nvidia-modelopt")) for r in always), always
    assert any(r.startswith("tensorrt") and 'extra == "tensorrt"' in r for r in requires)
    assert any(r.startswith("cuda-bindings") and 'extra == "tensorrt"' in r for r in requires)  # not pycuda
    assert not any(r.startswith("pycuda") and 'extra == "tensorrt"' in r for r in requires)
    assert "[dk]" in entry_points and "trt = dk_trt.plugin" in entry_points
