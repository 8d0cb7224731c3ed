"""Every option, shape-range, DLA and int8 mistake is one clear error before TensorRT is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dk import api
from dk.errors import DkError, UsageError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, QuantizeRequest, TensorSpec
from dk.testing.models import calibration_feeds
from dk_trt.export import prepare_export
from dk_trt.jetson import dla_refusal, jetson_model
from dk_trt.options import DEFAULT_BATCH_RANGE, check_dla, parse_workspace, profiles_for
from dk_trt.quantize import check_quantize

DEFAULT = parse_model_arg(None)


def export_request(tmp_path: Path, **kw) -> ExportRequest:
    return ExportRequest(source=DEFAULT, out_dir=tmp_path, **kw)


def test_default_model_gets_the_default_batch_profile_and_conventional_name(tmp_path):
    prepared = prepare_export(export_request(tmp_path, precision="fp16"))
    assert prepared.name == "v1.0_digitsnet_default_8x8_fp16_dla_disabled"
    (profile,) = prepared.settings.profiles
    low, opt, high = DEFAULT_BATCH_RANGE
    assert (profile.min, profile.opt, profile.max) == ((low, 1, 8, 8), (opt, 1, 8, 8), (high, 1, 8, 8))
    (spec,) = prepared.inputs
    assert (spec.min_shape, spec.max_shape) == ((1, 1, 8, 8), (64, 1, 8, 8))


def test_given_ranges_become_the_profile_and_opt_defaults_to_max(tmp_path):
    prepared = prepare_export(export_request(
        tmp_path, min_shapes={"input": (2, 1, 8, 8)}, max_shapes={"input": (16, 1, 8, 8)}))
    (profile,) = prepared.settings.profiles
    assert (profile.min[0], profile.opt[0], profile.max[0]) == (2, 16, 16)


def test_static_model_has_no_profile(tmp_path):
    prepared = prepare_export(export_request(tmp_path, dynamic_batch=False))
    assert prepared.settings.profiles == () and prepared.inputs[0].shape == (1, 1, 8, 8)


@pytest.mark.parametrize("ranges, message", [
    (dict(min_shapes={"input": (8, 1, 8, 8)}, opt_shapes={"input": (4, 1, 8, 8)}, max_shapes={"input": (16, 1, 8, 8)}),
     r"axis 0: min 8, opt 4, max 16 must satisfy min <= opt <= max"),
    (dict(min_shapes={"input": (1, 1, 8, 8)}, opt_shapes={"input": (32, 1, 8, 8)}, max_shapes={"input": (16, 1, 8, 8)}),
     r"axis 0: min 1, opt 32, max 16"),
    (dict(min_shapes={"input": (1, 8, 8)}), r"--min-shapes gives 'input' rank 3, but the input is \[batch, 1, 8, 8\]"),
    (dict(max_shapes={"image": (4, 1, 8, 8)}), r"--max-shapes names input 'image', but the model's inputs are \['input'\]"),
    (dict(max_shapes={"input": (4, 3, 8, 8)}), r"has axis 1 fixed at 1"),
])
def test_bad_shape_ranges_are_refused(tmp_path, ranges, message):
    with pytest.raises(UsageError, match=message):
        prepare_export(export_request(tmp_path, **ranges))


def test_range_on_an_input_that_is_not_dynamic_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"but the input \[1, 1, 8, 8\] is not dynamic"):
        prepare_export(export_request(tmp_path, dynamic_batch=False, max_shapes={"input": (8, 1, 8, 8)}))


def test_dynamic_spatial_axes_need_explicit_ranges():
    spec = TensorSpec("image", ("batch", 3, "height", "width"))
    with pytest.raises(UsageError, match="has dynamic axes 0, 2, 3: give both --min-shapes and --max-shapes"):
        profiles_for([spec], {}, {}, {})
    (profile,) = profiles_for([spec], {"image": (1, 3, 64, 64)}, {}, {"image": (4, 3, 256, 256)})
    assert profile.opt == (4, 3, 256, 256)


def test_unknown_and_malformed_options_are_refused(tmp_path):
    with pytest.raises(UsageError, match=r"unknown trt export option\(s\) fp16; valid options are workspace"):
        api.export("trt", export_request(tmp_path, options={"fp16": "1"}))
    with pytest.raises(UsageError, match="workspace=lots is not a positive size"):
        prepare_export(export_request(tmp_path, options={"workspace": "lots"}))
    with pytest.raises(UsageError, match="dla_core=first must be a DLA core index"):
        prepare_export(export_request(tmp_path, options={"dla_core": "first"}))
    with pytest.raises(UsageError, match="precision 'bf16' is not one of fp32, fp16, int8"):
        prepare_export(export_request(tmp_path, precision="bf16"))


def test_workspace_sizes_parse_to_bytes():
    assert parse_workspace("1024") == 1 << 30
    assert parse_workspace("512M") == 512 << 20 and parse_workspace("2G") == 2 << 30
    assert parse_workspace("64KiB") == 64 << 10 and parse_workspace(None) is None


def test_dla_is_refused_on_a_machine_that_is_not_a_jetson(tmp_path):
    assert jetson_model(tmp_path) is None
    assert "is not a Jetson" in dla_refusal(tmp_path)
    with pytest.raises(DkError, match="dla_core=0: DLA cores exist only on Jetson Xavier and Orin"):
        check_dla(0, "fp16", dla_refusal(tmp_path))


def test_jetson_orin_allows_dla_and_nano_does_not(tmp_path, fake_jetson):
    orin = fake_jetson(tmp_path / "orin", b"NVIDIA Jetson AGX Orin Developer Kit\x00", dla=2)
    nano = fake_jetson(tmp_path / "nano", b"NVIDIA Jetson Nano Developer Kit\x00")
    assert jetson_model(orin) == "NVIDIA Jetson AGX Orin Developer Kit" and dla_refusal(orin) is None
    assert "has no DLA cores" in dla_refusal(nano)
    assert jetson_model(fake_jetson(tmp_path / "bare", None)) == "Jetson"  # nv_tegra_release only
    with pytest.raises(UsageError, match="the DLA runs fp16 or int8 only; add --precision fp16"):
        check_dla(0, "fp32", dla_refusal(orin))


def test_dla_on_this_machine_fails_before_tensorrt_is_needed(tmp_path):
    if dla_refusal() is None:
        pytest.skip("this machine is a Jetson with DLA")
    with pytest.raises(DkError, match="DLA cores exist only on Jetson"):
        api.export("trt", export_request(tmp_path, precision="fp16", options={"dla_core": "0"}))


def test_int8_export_needs_a_qdq_onnx(tmp_path):
    with pytest.raises(UsageError, match=r"int8 needs an explicitly quantized \(Q/DQ\) ONNX.*only 10.x can also "
                                         r"calibrate"):
        api.export("trt", export_request(tmp_path, precision="int8"))


def test_int8_export_accepts_a_qdq_onnx(tmp_path):
    pytest.importorskip("onnxruntime", reason="the Q/DQ ONNX comes from the ort plugin's quantizer")
    qdq = api.quantize("ort", QuantizeRequest(source=DEFAULT, out_dir=tmp_path, calibration=calibration_feeds()))
    prepared = prepare_export(ExportRequest(source=parse_model_arg(str(qdq.path)), out_dir=tmp_path, precision="int8"))
    assert prepared.name == "v1.0_digitsnet_default_8x8_int8_dla_disabled"


def quantize_request(**kw) -> QuantizeRequest:
    kw.setdefault("calibration", calibration_feeds())
    return QuantizeRequest(source=DEFAULT, **kw)


@pytest.mark.parametrize("kw, message", [
    (dict(method="dynamic"), "TensorRT has no dynamic quantization"),
    (dict(calibration=None), "int8 needs calibration data: pass --data calib.npz"),
    (dict(precision="fp16"), "makes int8 engines, not fp16"),
    (dict(options={"qat": "1", "calibrator": "entropy"}), "drop calibrator=entropy"),
    (dict(options={"calibrator": "minmax"}), "calibrator=minmax is not one of qdq, entropy"),
    (dict(options={"train": "x:y"}), "option train applies only with -o qat=1"),
    (dict(options={"calib_cache": "c.cache"}), "option calib_cache applies only with calibrator=entropy"),
    (dict(options={"qat": "maybe"}), "option qat=maybe must be 1 or 0"),
    (dict(options={"epochs": "3"}), r"unknown trt quantize option\(s\) epochs"),
])
def test_quantize_requests_are_checked_first(kw, message):
    with pytest.raises(UsageError, match=message):
        check_quantize(quantize_request(**kw))


def test_quantize_choices_pass_through():
    assert check_quantize(quantize_request()) == (False, "qdq")
    assert check_quantize(quantize_request(options={"qat": "1", "train": "m:f"})) == (True, "qdq")
    assert check_quantize(quantize_request(options={"calibrator": "entropy", "calib_cache": "c"})) == (False, "entropy")
