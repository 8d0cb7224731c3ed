"""The precision path each TensorRT version takes, chosen from version strings (no TensorRT)."""

from __future__ import annotations

import pytest

from dk.errors import DkError, MissingDependency
from dk_trt.export import check_path
from dk_trt.options import BuildSettings
from dk_trt.versions import parse_version, precision_path


@pytest.mark.parametrize("version", ["10.0.1", "10.3.0.26", "10.13.2.6"])
def test_tensorrt_10_uses_builder_flags_and_keeps_calibrators(version):
    path = precision_path(version)
    assert (path.major, path.strongly_typed, path.fp16, path.int8, path.dla) == (
        10, False, "builder-flag", "qdq+calibrator", True)
    assert path.has_calibrator and "fp16 by builder flag" in path.describe()


@pytest.mark.parametrize("version", ["11.0.0.5", "11.4.1", "12.0"])
def test_tensorrt_11_and_later_are_strongly_typed_with_qdq_int8_only(version):
    path = precision_path(version)
    assert (path.strongly_typed, path.fp16, path.int8, path.dla) == (True, "fp16-onnx", "qdq", False)
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
