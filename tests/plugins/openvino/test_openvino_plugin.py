"""Registration and dk_describe of the openvino plugin (plain doctor vs --probe)."""

from __future__ import annotations

import importlib.metadata
import json

import openvino
from dk import api
from dk.plugins import get_plugin_manager

from tests.conftest import run_dk


def test_openvino_plugin_is_registered_with_every_stage():
    manager = get_plugin_manager()
    record = manager.get("openvino")
    assert (record.distribution, record.status) == ("dk-plugin-openvino", "ok")
    for hook in ("dk_describe", "dk_export", "dk_quantize", "dk_load_engine"):
        assert manager.implements("openvino", hook)


def test_describe_without_probe_reports_versions_from_metadata():
    info = api.describe("openvino", probe=False)
    assert (info.name, info.kind, info.available, info.status) == ("openvino", "engine", True, "ok")
    assert info.formats_out == ["openvino-ir"] and "onnx" in info.formats_in
    assert info.precisions == ["fp32", "fp16", "int8"]
    assert info.versions["openvino"] == importlib.metadata.version("openvino")
    assert info.versions["nncf"] == importlib.metadata.version("nncf")
    assert info.devices == ["CPU", "GPU", "GPU.N", "NPU", "AUTO"]
    assert "device_names" not in info.details


def test_describe_with_probe_lists_the_devices_openvino_reports():
    info = api.describe("openvino", probe=True)
    core = openvino.Core()
    assert info.devices == core.available_devices
    assert info.details["device_names"]["CPU"] == core.get_property("CPU", "FULL_DEVICE_NAME")


def test_doctor_probe_json_shows_openvino_devices():
    proc = run_dk("doctor", "--probe", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (entry,) = [p for p in report["plugins"] if p["name"] == "openvino"]
    assert entry["status"] == "ok" and "CPU" in entry["devices"]
    assert entry["versions"]["openvino"] == importlib.metadata.version("openvino")
