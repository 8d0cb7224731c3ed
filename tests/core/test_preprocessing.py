"""The manifest's pre-processing: the same numbers from numpy and OpenCV, geometry that inverts."""

from __future__ import annotations

import numpy as np
import pytest

from dk.default_model import load_split
from dk.errors import InputError
from dk.sources import default_model_meta
from dk.specs import TensorSpec
from dk.vision import preprocessing
from dk.vision.preprocessing import PreprocessSpec, preprocess, transform_for
from tests.digit_images import digit_images

DIGITS_INPUT = TensorSpec("input", ("batch", 1, 8, 8), "float32")
RGB_INPUT = TensorSpec("input", (1, 3, 64, 64), "float32")


@pytest.fixture(params=["numpy", "opencv"])
def backend(request, monkeypatch):
    if request.param == "opencv":
        pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    monkeypatch.setattr(preprocessing, "_has_cv2", lambda: request.param == "opencv")
    return request.param


def test_default_model_spec_maps_8bit_images_to_its_training_range():
    spec = PreprocessSpec.from_meta(default_model_meta(), DIGITS_INPUT)
    assert (spec.size, spec.colour, spec.layout, spec.resize) == ((8, 8), "gray", "NCHW", "stretch")
    batch = preprocess([np.full((8, 8), 255, np.uint8), np.zeros((8, 8), np.uint8)], spec)
    assert batch.shape == (2, 1, 8, 8) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], 1.0, atol=1e-6)  # 255 -> 16 (digits range) -> x 1/16
    np.testing.assert_allclose(batch[1], 0.0, atol=1e-6)


def test_upscaled_digit_pngs_preprocess_back_to_the_eval_split(backend):
    images, _ = digit_images(20)
    spec = PreprocessSpec.from_meta(default_model_meta(), DIGITS_INPUT)
    x, _ = load_split("eval")
    np.testing.assert_allclose(preprocess(images, spec), x[:20], atol=0.5 / 255 + 1e-6)


def test_numpy_and_opencv_resizes_agree_on_smooth_images():
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    yy, xx = np.mgrid[0:90, 0:120]
    image = np.stack([(xx * 2) % 256, (yy * 2) % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
    spec = PreprocessSpec.from_meta({}, TensorSpec("input", (1, 3, 30, 40), "float32"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(preprocessing, "_has_cv2", lambda: False)
        numpy_batch = preprocess([image], spec)
    cv_batch = preprocess([image], spec)
    assert np.abs(numpy_batch - cv_batch).mean() < 2 / 255


def test_rgb_defaults_mean_std_bgr_and_nhwc():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51  # red 1.0, blue 0.2
    nchw = preprocess([image], PreprocessSpec.from_meta({}, TensorSpec("x", (1, 3, 4, 4), "float32")))
    np.testing.assert_allclose(nchw[0, :, 0, 0], [1.0, 0.0, 0.2], atol=1e-6)
    meta = {"preprocessing": {"layout": "NHWC", "colour": "bgr", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    nhwc = preprocess([image], PreprocessSpec.from_meta(meta, TensorSpec("x", (1, 4, 4, 3), "float32")))
    assert nhwc.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(nhwc[0, 0, 0], [-0.6, -1.0, 1.0], atol=1e-6)


def test_letterbox_pads_and_its_transform_maps_boxes_back(backend):
    spec = PreprocessSpec.from_meta({"preprocessing": {"resize": "letterbox", "pad_value": 0}}, RGB_INPUT)
    image = np.full((32, 64, 3), 255, np.uint8)  # wide: scaled by 1, padded 16 rows top and bottom
    batch = preprocess([image], spec)
    assert batch[0, :, :16].max() == 0 and batch[0, :, 48:].max() == 0
    np.testing.assert_allclose(batch[0, :, 16:48], 1.0)
    t = transform_for((32, 64), spec)
    assert t.scale == (1.0, 1.0) and t.offset == (0.0, 16.0)
    # the box covering the pasted image in model coordinates is the whole original image
    np.testing.assert_allclose(t.boxes_to_image([[0, 16 / 64, 1, 48 / 64]], spec.size), [[0, 0, 64, 32]])


def test_center_crop_keeps_the_middle():
    spec = PreprocessSpec.from_meta({"preprocessing": {"resize": "center-crop"}}, TensorSpec("x", (1, 3, 4, 4), "float32"))
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 2:6] = 255
    np.testing.assert_allclose(preprocess([image], spec)[0], 1.0)
    assert transform_for((4, 8), spec).offset == (-2.0, 0.0)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(InputError, match="dynamic height/width"):
        PreprocessSpec.from_meta({}, TensorSpec("x", ("batch", 3, "h", "w"), "float32"))
    with pytest.raises(InputError, match="resize 'zoom' is not one of"):
        PreprocessSpec.from_meta({"preprocessing": {"resize": "zoom"}}, RGB_INPUT)
    with pytest.raises(InputError, match="must be uint8"):
        preprocess([np.zeros((4, 4), np.float32)], PreprocessSpec.from_meta({}, RGB_INPUT))
