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
from dk_torch2trt import doctor
from dk_torch2trt.options import convert_settings

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
    with pytest.raises(DkError, match="the torch2trt plugin cannot run here \\(missing-dependency\\): needs .*torch2trt"):
        api.export("torch2trt", ExportRequest(source=parse_model_arg(None), out_dir="unused"))


@pytest.mark.parametrize("precision, options, suffix", [
    ("fp32", {}, "dla_disabled_trt"),
    ("fp16", {"use_onnx": "1"}, "dla_disabled_with_onnx_trt"),
    ("fp16", {"max_batch_size": "64"}, "dla_disabled_trt"),
])
def test_files_are_named_like_the_guide(precision, options, suffix):
    settings = convert_settings(precision, options)
    assert settings.suffix == suffix and settings.max_batch_size == 64


def test_another_batch_bound_gets_a_folder_of_its_own():
    assert convert_settings("fp32", {"max_batch_size": "8"}).suffix == "batch1-8_dla_disabled_trt"


def test_bad_requests_are_refused_before_any_conversion(tmp_path):
    source = parse_model_arg(None)
    with pytest.raises(UsageError, match="use 'dk run quantize --plugin torch2trt'"):
        api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, precision="int8"))
    with pytest.raises(UsageError, match=r"unknown torch2trt export option\(s\) fp16_mode"):
        api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, options={"fp16_mode": "1"}))
    for trt_only in ("timing_cache", "profiling_verbosity", "tf32", "calibrator"):  # trt options torch2trt never uses
        with pytest.raises(UsageError, match=rf"unknown torch2trt export option\(s\) {trt_only}"):
            api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, options={trt_only: "1"}))
    with pytest.raises(UsageError, match=r"option workspace: torch2trt sets max_workspace_size only for TensorRT < 10"):
        api.export("torch2trt", ExportRequest(source=source, out_dir=tmp_path, options={"workspace": "1G"}))
    with pytest.raises(UsageError, match="max_batch_size=0 must be a positive whole number"):
        convert_settings("fp32", {"max_batch_size": "0"})
    with pytest.raises(UsageError, match="needs calibration data"):
        api.quantize("torch2trt", QuantizeRequest(source=source, out_dir=tmp_path))


def test_use_onnx_names_onnx_graphsurgeon_when_it_is_missing(monkeypatch):
    import importlib.util as util

    from dk.errors import MissingDependency
    from dk_torch2trt.options import check_use_onnx

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "onnx_graphsurgeon" else real(name, *a))
    with pytest.raises(MissingDependency, match=r"pip install onnx onnx-graphsurgeon .*\(missing: onnx_graphsurgeon\)$"):
        check_use_onnx(convert_settings("fp16", {"use_onnx": "1"}))


def test_dla_needs_a_single_batch_size(tmp_path, monkeypatch):
    import functools

    from tests.plugins.trt.conftest import _fake_jetson as fake_jetson

    from dk_torch2trt import options
    from dk_trt.jetson import dla_refusal

    orin = fake_jetson(tmp_path, b"NVIDIA Jetson AGX Orin Developer Kit\x00", dla=2)
    monkeypatch.setattr(options, "dla_refusal", functools.partial(dla_refusal, orin))
    monkeypatch.setitem(__import__("sys").modules, "dk_jetson.board", None)  # module name decides: Orin has DLA
    assert convert_settings("fp16", {"dla_core": "0"}).max_batch_size == 1
    with pytest.raises(UsageError, match="one batch size only .* drop max_batch_size=8"):
        convert_settings("fp16", {"dla_core": "0", "max_batch_size": "8"})


@pytest.mark.parametrize("version, status", [("11.4.0.106", "incompatible"), ("11.0.0.114", "incompatible"),
                                             ("10.13.3.9", "no-device")])
def test_doctor_says_incompatible_with_tensorrt_11(monkeypatch, tmp_path, version, status):
    """The facts doctor reads are monkeypatched (torch2trt and TensorRT installed, a version, no GPU
    driver files under an empty root); the decision is the plugin's own."""
    import functools

    from dk_trt.versions import no_gpu_reason

    monkeypatch.setattr(doctor, "missing_reason", lambda: None)
    monkeypatch.setattr(doctor, "trt_distribution", lambda: ("tensorrt", version))
    monkeypatch.setattr(doctor, "no_gpu_reason", functools.partial(no_gpu_reason, tmp_path))
    info = doctor.describe(probe=False)
    assert (info.available, info.status) == (False, status)
    if status == "incompatible":
        assert info.reason.startswith("torch2trt needs TensorRT 10.x: it uses trt.IInt8Calibrator, "
                                      "trt.CalibrationAlgoType, trt.EXPLICIT_BATCH, which TensorRT " + version)
        with pytest.raises(DkError, match=r"cannot run here \(incompatible\): torch2trt needs TensorRT 10.x"):
            doctor.require_usable()
    else:
        assert "no NVIDIA GPU driver here" in info.reason


def test_conformance_kit_skips_with_the_incompatibility(monkeypatch):
    from dk.testing.conformance import require_plugin

    monkeypatch.setattr(doctor, "unusable", lambda: ("incompatible", "torch2trt needs TensorRT 10.x: reason"))
    with pytest.raises(pytest.skip.Exception, match=r"unavailable \(incompatible\): torch2trt needs TensorRT 10.x"):
        require_plugin("torch2trt")


def test_calibration_items_keep_the_batch_axis_and_dtype():
    import numpy as np

    from dk.specs import TensorSpec
    from dk_torch2trt.calibration import calibration_batches

    feeds = lambda: iter([{"input": np.arange(5 * 2, dtype=np.float64).reshape(5, 2)}])  # noqa: E731
    items = calibration_batches(feeds, [TensorSpec("input", (2, 2), "float32")])
    assert [item[0].shape for item in items] == [(2, 2), (2, 2)]  # batch 2 per item, the short tail dropped
    assert items[1][0].dtype == np.float32 and items[1][0].tolist() == [[4.0, 5.0], [6.0, 7.0]]
    one = calibration_batches(feeds, [TensorSpec("input", (1, 2), "float32")])
    assert len(one) == 5 and one[0][0].shape == (1, 2)
    with pytest.raises(DkError, match="no batch of 8 sample"):
        calibration_batches(feeds, [TensorSpec("input", (8, 2), "float32")])


def test_trtmodule_state_dict_loads_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    from dk_torch2trt.runtime import read_state_dict

    state = OrderedDict(engine=bytearray(b"serialized-engine-bytes"), input_names=["input"], output_names=["logits"],
                        input_flattener={"schema": [0], "size": 1}, output_flattener={"schema": 0, "size": 1})
    torch.save(state, tmp_path / "m_trt.pth")
    loaded = read_state_dict(tmp_path / "m_trt.pth")
    assert loaded["engine"] == b"serialized-engine-bytes" and loaded["input_flattener"] == {"schema": [0], "size": 1}


class _NotAllowed:
    pass


def test_pickled_objects_and_foreign_dicts_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from dk_torch2trt.runtime import read_state_dict

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


def test_devices_are_cuda_only_and_cpu_means_the_first_gpu():
    from dk_torch2trt.options import cuda_device

    assert (cuda_device("cpu"), cuda_device("cuda"), cuda_device("cuda:1")) == ("cuda:0", "cuda:0", "cuda:1")
    with pytest.raises(DkError, match="runs on cuda\\[:N\\] only, not 'npu'"):
        cuda_device("npu")


def test_both_plugins_share_the_hooks_of_the_trt_plugin():
    import dk_torch2trt.plugin as torch2trt_plugin
    import dk_trt.plugin as trt_plugin

    hooks = ("dk_describe", "dk_export", "dk_quantize", "dk_load_engine")
    for module in (trt_plugin, torch2trt_plugin):
        assert all(getattr(module, h).__module__ == "dk_trt.hooks" for h in hooks)
    assert (trt_plugin.dk_describe(probe=False).name, torch2trt_plugin.dk_describe(probe=False).name) == (
        "trt", "torch2trt")
