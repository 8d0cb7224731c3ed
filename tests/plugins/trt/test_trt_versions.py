"""The precision path each TensorRT version takes, chosen from version strings (no TensorRT)."""

from __future__ import annotations

import pytest

from dk.errors import DkError, MissingDependency
from dk_trt.export import check_path
from dk_trt.options import BuildSettings
from dk_trt.build import precision_flags
from dk_trt.versions import (
    REMOVED_IN_11, TORCH2TRT_NEEDS, dla_supported, no_gpu_reason, parse_release, parse_version, precision_path,
    torch2trt_incompatibility,
)


@pytest.mark.parametrize("version", ["10.0.1", "10.3.0.26", "10.13.2.6"])
def test_tensorrt_10_uses_builder_flags_and_keeps_calibrators(version):
    path = precision_path(version)
    assert (path.major, path.strongly_typed, path.fp16, path.int8, path.dla) == (
        10, False, "builder-flag", "qdq+calibrator", True)
    assert path.has_calibrator and "fp16 by builder flag" in path.describe()


@pytest.mark.parametrize("version", ["11.0.0.5", "11.4.1", "12.0"])
def test_tensorrt_11_and_later_are_strongly_typed_with_qdq_int8_only(version):
    path = precision_path(version)
    assert (path.strongly_typed, path.fp16, path.int8) == (True, "fp16-onnx", "qdq")
    assert not path.has_calibrator and "Q/DQ ONNX only" in path.describe()


@pytest.mark.parametrize("version", ["8.6.1.6", "9.3.0"])
def test_tensorrt_older_than_10_is_refused_with_the_minimum(version):
    with pytest.raises(MissingDependency, match=rf"TensorRT {version} is too old: dk needs 10.0"):
        precision_path(version)


def test_unreadable_version_is_a_clear_error():
    with pytest.raises(MissingDependency, match="cannot read the TensorRT version 'trt-nightly'"):
        precision_path("trt-nightly")
    assert parse_version(" 10.3.0 ") == (10, 3)


def test_dla_and_entropy_calibrator_are_refused_on_tensorrt_11():
    v11, v10 = precision_path("11.0.0"), precision_path("10.3.0")
    with pytest.raises(DkError, match="has no DLA support; DLA engines need TensorRT 10.x"):
        check_path(BuildSettings("fp16", dla_core=0), v11)
    with pytest.raises(DkError, match="calibrator=entropy: TensorRT 11.0.0.*implicit quantization is gone"):
        check_path(BuildSettings("int8"), v11, "entropy")
    check_path(BuildSettings("fp16", dla_core=0), v10)  # both allowed on 10.x
    check_path(BuildSettings("int8"), v10, "entropy")


@pytest.mark.parametrize("version, dla", [
    ("10.0.1", True), ("10.3.0.26", True), ("10.16.1.11", True), ("11.0.0.114", False), ("11.4.0.106", False),
    ("11.4.1", True), ("11.4.1.3", True), ("11.5.0", True), ("12.0", False),
])
def test_dla_is_decided_by_the_version_table_not_the_major(version, dla):
    assert dla_supported(version) is dla and precision_path(version).dla is dla
    assert parse_release("11.4") == (11, 4, 0)


def test_torch2trt_is_incompatible_with_tensorrt_11_only():
    assert torch2trt_incompatibility("10.13.3.9") is None and torch2trt_incompatibility(None) is None
    reason = torch2trt_incompatibility("11.0.0.114")
    assert reason.startswith("torch2trt needs TensorRT 10.x") and all(name in reason for name in TORCH2TRT_NEEDS)
    assert set(TORCH2TRT_NEEDS) <= set(REMOVED_IN_11)


def test_int8_on_tensorrt_10_sets_fp16_too():
    assert precision_flags("int8") == ("INT8", "FP16")
    assert precision_flags("fp16") == ("FP16",) and precision_flags("fp32") == ()


def test_no_gpu_is_told_from_driver_files(tmp_path):
    assert "no NVIDIA GPU driver here" in no_gpu_reason(tmp_path)
    for marker in ("proc/driver/nvidia/version", "dev/nvidia0", "dev/nvhost-ctrl-gpu"):  # server, Jetson
        root = tmp_path / marker.replace("/", "_")
        (root / marker).parent.mkdir(parents=True)
        (root / marker).write_text("")
        assert no_gpu_reason(root) is None
