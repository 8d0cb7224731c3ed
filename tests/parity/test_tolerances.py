"""compare_outputs: exact error values on known perturbations, and judgement by precision."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from dk.testing.tolerances import TOLERANCES, compare_outputs, cosine_similarity, tolerance_for

REF = np.array([[2.0, -4.0], [8.0, 1.0]], dtype=np.float32)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_identical_outputs_pass_with_zero_error(precision):
    result = compare_outputs({"logits": REF}, {"logits": REF.copy()}, precision)
    out = result.outputs["logits"]
    assert result.passed and out.passed and out.failures == ()
    assert (out.max_abs, out.max_rel, out.mean_rel, out.cosine, out.top1) == (0.0, 0.0, 0.0, 1.0, 1.0)
    assert out.shape == (2, 2)


def test_known_perturbation_gives_exact_errors():
    cand = REF.copy()
    cand[1, 1] = 1.5  # one element off by 0.5 where the reference is 1.0
    out = compare_outputs({"y": REF}, {"y": cand}, "fp32").outputs["y"]
    assert out.max_abs == 0.5
    assert out.max_rel == 0.5
    assert out.mean_rel == pytest.approx(0.5 / 15.0, rel=1e-12)  # sum|diff| / sum|ref|
    assert out.cosine == pytest.approx(85.5 / math.sqrt(85.0 * 86.25), rel=1e-12)
    assert out.top1 == 1.0


def test_precision_decides_whether_that_perturbation_passes():
    cand = REF.copy()
    cand[1, 1] = 1.5
    fp32 = compare_outputs(REF, cand, "fp32")
    assert not fp32.passed
    assert fp32.outputs["output"].failures == (
        "1 of 4 elements outside atol=1e-05*8 + rtol=1e-05*|ref|",
        "cosine similarity 0.998567 < 0.99999",
    )
    assert not compare_outputs(REF, cand, "fp16").passed  # 0.5 > 0.01*8 + 0.01*1
    assert compare_outputs(REF, cand, "int8").passed  # top-1 kept, cosine 0.9986


@pytest.mark.parametrize(
    ("relative_error", "fp32", "fp16"), [(5e-6, True, True), (5e-5, False, True), (5e-2, False, False)]
)
def test_relative_perturbation_against_fp32_and_fp16(relative_error, fp32, fp16):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((8, 10)).astype(np.float32) * 3
    cand = ref * np.float32(1 + relative_error)
    assert compare_outputs(ref, cand, "fp32").passed is fp32
    assert compare_outputs(ref, cand, "fp16").passed is fp16


def test_absolute_tolerance_scales_with_output_magnitude():
    big = np.full((4, 4), 1000.0, dtype=np.float32)
    assert compare_outputs(big, big + np.float32(5e-3), "fp32").passed  # 5e-3 <= 1e-5*1000 + 1e-5*1000
    small = np.zeros((4, 4))
    small[0, 0] = 1.0
    out = compare_outputs(small, small + 2e-5, "fp32")  # the scale is floored at 1: atol stays 1e-5
    assert not out.passed and out.outputs["output"].max_abs == pytest.approx(2e-5, rel=1e-9)


def test_relative_error_of_zero_reference_is_floored_not_infinite():
    ref = np.array([0.0, 10.0], dtype=np.float32)
    out = compare_outputs(ref, np.array([1e-4, 10.0], dtype=np.float32), "fp32").outputs["output"]
    assert out.max_rel == pytest.approx(1e-4 / (1e-6 * 10.0), rel=1e-4)  # |ref| floored at 1e-6 * max|ref|
    assert out.top1 is None  # only 2-D outputs have top-1


def _logits_with_flipped_rows(flipped: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 1, size=(100, 10)).astype(np.float32)
    ref[:, 0], ref[:, 1] = 10.0, 9.9
    cand = ref.copy()
    cand[:flipped, 1] = 10.1  # argmax moves from class 0 to class 1 in these rows
    return ref, cand


@pytest.mark.parametrize(("flipped", "passed"), [(0, True), (4, True), (5, True), (6, False), (20, False)])
def test_int8_is_judged_by_top1_agreement(flipped, passed):
    ref, cand = _logits_with_flipped_rows(flipped)
    result = compare_outputs({"logits": ref}, {"logits": cand}, "int8")
    out = result.outputs["logits"]
    assert out.top1 == pytest.approx(1 - flipped / 100)
    assert out.cosine > 0.999  # the flips barely move the vectors: only top-1 can fail them
    assert result.passed is passed


def test_int8_fails_on_low_cosine_even_with_top1_kept():
    ref = np.array([[10.0, 0.0, 0.0]], dtype=np.float32)
    cand = np.array([[10.0, 9.0, 9.0]], dtype=np.float32)
    out = compare_outputs(ref, cand, "int8").outputs["output"]
    assert out.top1 == 1.0 and out.cosine == pytest.approx(10 / math.sqrt(262), rel=1e-9)
    assert out.failures == (f"cosine similarity {out.cosine:.6f} < 0.98",)


def test_shape_mismatch_missing_output_and_nan_fail():
    assert compare_outputs(REF, REF[:1], "int8").outputs["output"].failures == (
        "shape [1, 2] differs from the reference's [2, 2]",)
    missing = compare_outputs({"a": REF, "b": REF}, {"a": REF}, "fp32")
    assert not missing.passed and missing.failures == ("candidate lacks output(s) ['b']; it has ['a']",)
    nan = REF.copy()
    nan[0, 0] = np.nan
    assert not compare_outputs(REF, nan, "fp16").passed


def test_cosine_of_zero_vectors():
    zeros = np.zeros(3)
    assert cosine_similarity(zeros, zeros) == 1.0
    assert cosine_similarity(zeros, np.ones(3)) == 0.0
    assert cosine_similarity(np.ones(3), -np.ones(3)) == -1.0


def test_tolerance_table_and_json():
    assert (tolerance_for("fp32").rtol, tolerance_for("fp16").rtol) == (1e-5, 1e-2)
    assert (TOLERANCES["int8"].min_top1, TOLERANCES["int8"].min_cosine) == (0.95, 0.98)
    with pytest.raises(ValueError, match="no tolerance for precision 'bf8'"):
        tolerance_for("bf8")
    data = json.loads(json.dumps(compare_outputs({"y": REF}, {"y": REF}, "fp16").to_json()))
    assert data["passed"] is True and data["outputs"]["y"]["shape"] == [2, 2]


def test_tolerances_import_without_pytest_or_hypothesis():
    code = (
        "import sys; import dk.testing, dk.testing.tolerances; from dk.testing import compare_outputs; "
        "print(sorted(m for m in ('pytest', 'hypothesis', '_pytest') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_assert_outputs_close_accepts_isa_rounding_on_large_logits_and_names_a_real_difference():
    """Logits of magnitude ~18 that differ by 1.6e-5 (relative 1e-6, as AVX2 and AVX-512 kernels
    do) are equal at fp32; a fixed atol=1e-5 would call them different."""
    from dk.testing.tolerances import assert_outputs_close

    rng = np.random.default_rng(0)
    reference = (rng.standard_normal((360, 10)) * 6).astype(np.float32)
    reference[0, 0] = 18.0
    candidate = reference.copy()
    candidate[0, 0] += 1.6e-5
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(candidate, reference, atol=1e-5, rtol=0)
    assert assert_outputs_close(candidate, reference).passed
    with pytest.raises(AssertionError, match=r"(?s)ort differs from the reference beyond fp32 tolerance:\n.*"
                                             r"10 of 3600 elements outside"):
        assert_outputs_close(candidate + np.eye(360, 10, dtype=np.float32), reference, what="ort")
