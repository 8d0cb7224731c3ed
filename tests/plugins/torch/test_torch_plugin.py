"""Registration and description of the torch plugin, and its cheap import."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import torch

from dk import api
from dk.plugins import PluginManager
from dk_torch import plugin


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_plugin_does_not_import_torch_or_onnx():
    run_python(
        "import dk_torch.plugin, sys\n"
        "heavy = {'torch', 'onnx', 'onnxruntime', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )


def test_describe_without_probe_stays_light_and_lists_formats():
    out = run_python(
        "import json, sys, attrs, dk_torch.plugin as p\n"
        "info = p.dk_describe(probe=False)\n"
        "assert 'torch' not in sys.modules\n"
        "print(json.dumps(attrs.asdict(info)))"
    )
    info = json.loads(out)

    assert info["name"] == "torch" and info["kind"] == "exporter"
    assert info["formats_in"] == ["torch", "torchscript", "torch-export"] and info[
        "formats_out"
    ] == ["onnx"]
    assert info["precisions"] == ["fp32", "fp16"] and info["devices"] == ["cpu", "cuda"]
    assert (info["available"], info["status"]) == (True, "ok")
    assert info["versions"]["torch"] == torch.__version__


def test_describe_reports_missing_torch(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real_find_spec(name, *a),
    )

    info = plugin.dk_describe(probe=False)

    assert (info.available, info.status) == (False, "missing-dependency")
    assert info.reason == "torch is not installed: pip install torch==2.13.0"


def test_describe_with_probe_reports_cuda_availability():
    info = plugin.dk_describe(probe=True)

    assert info.details["cuda_available"] is torch.cuda.is_available()
    assert info.devices == (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if not torch.cuda.is_available():
        assert "cuda_devices" not in info.details


def test_plugin_is_registered_under_entry_point_torch():
    record = PluginManager().get("torch")

    assert record.plugin is plugin and record.distribution == "dk-plugin-torch"
    assert api.describe("torch").name == "torch"


def test_unknown_options_are_refused_at_export_and_load(tmp_path):
    import pytest

    from dk.errors import UsageError
    from dk.specs import ExportRequest, ModelSource

    with pytest.raises(UsageError, match=r"^unknown torch option\(s\) bogus; valid options are precision: "):
        api.export("torch", ExportRequest(source=ModelSource("default", ""), out_dir=tmp_path, options={"bogus": "1"}))
    artifact = api.export("torch", ExportRequest(source=ModelSource("default", ""), out_dir=tmp_path,
                                                 options={"threads": "1"}))  # a load key passes the export
    assert artifact.manifest["options"]["options"] == {"threads": "1"}
    with pytest.raises(UsageError, match=r"unknown torch option\(s\) levle"):
        api.load_engine("torch", artifact, "cpu", {"levle": "all"})


def test_another_plugin_exporting_a_torch_source_passes_only_the_source_options_on(tmp_path, tiny_module):
    from dk.specs import ExportRequest, ModelSource

    source = ModelSource("torch-callable", f"{tiny_module}:make_tiny")
    api.export("ort", ExportRequest(source=source, out_dir=tmp_path, shapes={"input": (1, 3, 8, 8)},
                                    options={"level": "all", "name": "net"}))  # level: ort's, refused by torch
    (manifest,) = (tmp_path / "torch").glob("*/dk.json")
    assert json.loads(manifest.read_text())["options"]["options"] == {"name": "net"}
