"""torch2trt plugin: registration, doctor status, options and naming, and reading TRTModule state
dicts with weights_only=True (torch only; converting needs torch2trt, TensorRT and a GPU)."""

from __future__ import annotations

import importlib.util
import pickle
from collections import OrderedDict

import pytest

from dk import api
from dk.errors import DkError, UsageError
from dk.plugins import get_plugin_manager
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, QuantizeRequest
from dk.testing import BackendConformance
from dk_torch2trt.convert import convert_settings

HAS_TORCH2TRT = all(importlib.util.find_spec(m) for m in ("torch2trt", "tensorrt"))


def test_torch2trt_plugin_is_registered():
    manager = get_plugin_manager()
    assert manager.get("torch2trt").distribution == "dk-plugin-torch2trt"
    for hook in ("dk_describe", "dk_export", "dk_quantize", "dk_load_engine"):
        assert manager.implements("torch2trt", hook)


@pytest.mark.skipif(HAS_TORCH2TRT, reason="torch2trt is installed here")
def test_doctor_says_how_to_install_torch2trt():
    info = api.describe("torch2trt", probe=False)
    assert (info.available, info.status) == (False, "missing-dependency")
    assert "github.com/NVIDIA-AI-IOT/torch2trt" in info.reason and "not on PyPI" in info.reason
    with pytest.raises(DkError, match="the torch2trt plugin needs .*torch2trt"):
        api.export("torch2trt", ExportRequest(source=parse_model_arg(None), out_dir="unused"))


@pytest.mark.parametrize("precision, options, suffix", [
    ("fp32", {}, "dla_disabled_trt"),
    ("fp16", {"use_onnx": "1"}, "dla_disabled_with_onnx_trt"),
])
def test_files_are_named_like_the_guide(precision, options, suffix):
    settings = convert_settings(precision, options)
    assert settings.suffix == suffix and settings.max_batch_size == 64


def test_bad_requests_are_refused_before_any_conversion(tmp_path):
    source = parse_model_arg(None)
    with pytest.raises(UsageError, match="use 'dk run quantize --plugin torch2trt'"):
        api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, precision="int8"))
    with pytest.raises(UsageError, match=r"unknown trt export option\(s\) fp16_mode"):
        api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, options={"fp16_mode": "1"}))
    with pytest.raises(UsageError, match="max_batch_size=0 must be a positive whole number"):
        convert_settings("fp32", {"max_batch_size": "0"})
    with pytest.raises(UsageError, match="needs calibration data"):
        api.quantize("torch2trt", QuantizeRequest(source=source, out_dir=tmp_path))


def test_trtmodule_state_dict_loads_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    from dk_torch2trt.module import read_state_dict

    state = OrderedDict(engine=bytearray(b"serialized-engine-bytes"), input_names=["input"], output_names=["logits"],
                        input_flattener={"schema": [0], "size": 1}, output_flattener={"schema": 0, "size": 1})
    torch.save(state, tmp_path / "m_trt.pth")
    loaded = read_state_dict(tmp_path / "m_trt.pth")
    assert loaded["engine"] == b"serialized-engine-bytes" and loaded["input_flattener"] == {"schema": [0], "size": 1}


class _NotAllowed:
    pass


def test_pickled_objects_and_foreign_dicts_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from dk_torch2trt.module import read_state_dict

    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"engine": _NotAllowed()}, fh, protocol=2)
    with pytest.raises(DkError, match="is not a readable torch2trt state dict"):
        read_state_dict(tmp_path / "evil.pth")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pth")
    with pytest.raises(DkError, match="not a TRTModule state dict \\(missing engine, input_names, output_names\\)"):
        read_state_dict(tmp_path / "plain.pth")


class TestTorch2trtConformance(BackendConformance):
    plugin = "torch2trt"
    precisions = ("fp32", "fp16")
    consumes_onnx = False
    device = "cuda"
