"""Build settings that reach the manifest and the cache key (TF32, DLA static shapes), the quantize
request's device and shapes, the timing cache file lock, and calibration arrays' dtypes; no TensorRT."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

from dk.artifacts import cache_key
from dk.errors import UsageError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, ModelSource, QuantizeRequest
from dk.testing.models import calibration_feeds
from dk_trt import export
from dk_trt.build import file_lock
from dk_trt.calibrator import batch_arrays
from dk_trt.jetson import dla_refusal
from dk_trt.options import settings_json
from dk_trt.quantize import engine_request

DEFAULT = parse_model_arg(None)
ORIN = b"NVIDIA Jetson AGX Orin Developer Kit\x00"


def test_tf32_is_off_unless_asked_and_is_part_of_the_cache_key(tmp_path):
    off = export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path))
    on = export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"tf32": "1"}))
    assert (off.settings.tf32, on.settings.tf32) == (False, True)
    assert settings_json(off.settings)["tf32"] is False and settings_json(on.settings)["tf32"] is True
    tools = {"tensorrt": "10.13.3.9", "gpu": "NVIDIA H200", "compute_capability": "9.0", "onnx": "1.17"}
    keys = {cache_key("trt", "sha", {"engine": settings_json(p.settings)}, tools) for p in (off, on)}
    assert len(keys) == 2
    with pytest.raises(UsageError, match="option tf32=maybe must be 1 or 0"):
        export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"tf32": "maybe"}))


@pytest.fixture
def orin(tmp_path, monkeypatch, fake_jetson):
    """This machine as a Jetson AGX Orin (module name decides: dk-plugin-jetson hidden)."""
    root = fake_jetson(tmp_path / "orin", ORIN, dla=2)
    monkeypatch.setitem(sys.modules, "dk_jetson.board", None)
    monkeypatch.setattr(export, "dla_refusal", functools.partial(dla_refusal, root))
    return root


def test_dla_builds_static_shapes(tmp_path, orin):
    prepared = export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path, precision="fp16",
                                                   options={"dla_core": "0"}))
    assert prepared.settings.profiles == () and prepared.inputs[0].shape == (1, 1, 8, 8)
    fixed = export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path, precision="fp16",
                                                options={"dla_core": "0"}, min_shapes={"input": (4, 1, 8, 8)},
                                                opt_shapes={"input": (4, 1, 8, 8)}, max_shapes={"input": (4, 1, 8, 8)}))
    (profile,) = fixed.settings.profiles
    assert profile.min == profile.opt == profile.max == (4, 1, 8, 8)


def test_dla_with_a_shape_range_is_one_clear_error(tmp_path, orin):
    with pytest.raises(UsageError, match=r"dla_core=0: the DLA runs static shapes only, but input 'input' has the "
                                         r"range min \[1, 1, 8, 8\], opt \[8, 1, 8, 8\], max \[8, 1, 8, 8\]"):
        export.prepare_export(ExportRequest(source=DEFAULT, out_dir=tmp_path, precision="fp16",
                                            options={"dla_core": "0"}, min_shapes={"input": (1, 1, 8, 8)},
                                            max_shapes={"input": (8, 1, 8, 8)}))


def test_quantize_keeps_the_requests_device_shapes_and_ranges(tmp_path):
    base = ExportRequest(source=DEFAULT, device="cuda:1", shapes={"input": (1, 1, 8, 8)},
                         max_shapes={"input": (16, 1, 8, 8)}, opset=18)
    request = QuantizeRequest(source=DEFAULT, out_dir=tmp_path, calibration=calibration_feeds(), export=base,
                              options={"workspace": "1G", "qat": "0", "calibrator": "qdq"}, force=True)
    source = ModelSource("artifact", str(tmp_path / "ort" / "v1.0_digitsnet_default_8x8_int8"))
    built = engine_request(request, source)
    assert (built.device, built.shapes, built.max_shapes, built.opset) == ("cuda:1", base.shapes, base.max_shapes, 18)
    assert (built.source, built.precision, built.out_dir, built.force) == (source, "int8", tmp_path, True)
    assert built.options == {"workspace": "1G"}  # quantize-only options do not reach the engine build
    assert engine_request(QuantizeRequest(source=DEFAULT), source).device == "cpu"  # the first GPU


def test_timing_cache_lock_excludes_other_holders(tmp_path):
    fcntl = pytest.importorskip("fcntl", reason="file locks are POSIX flock here")
    cache = tmp_path / "caches" / "trt.cache"
    with file_lock(cache):
        with open(cache.with_name("trt.cache.lock"), "a+b") as other:  # another open file: another holder
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(cache.with_name("trt.cache.lock"), "a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the block
        fcntl.flock(other, fcntl.LOCK_UN)


def test_calibration_arrays_keep_each_inputs_dtype():
    feed = {"image": np.ones((2, 3), np.float64), "ids": np.array([[1, 2]], np.int32)}
    image, ids = batch_arrays(feed, ["image", "ids"], {"image": "float16", "ids": "int64"})
    assert (image.dtype, ids.dtype) == (np.float16, np.int64) and ids.flags.c_contiguous
    (default,) = batch_arrays(feed, ["image"], {})
    assert default.dtype == np.float32
