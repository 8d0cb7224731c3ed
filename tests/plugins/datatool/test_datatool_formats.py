"""Reading the three dataset formats, and one clear message for each kind of bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from dk.errors import DkError
from dk.sources import default_model_meta
from dk.specs import TensorSpec
from dk.vision import evaluation
from dk_datatool.sources import open_dataset
from tests.digit_images import class_folder, coco_file, datatool_folder, digit_images, save_png

DIGITS_INPUT = TensorSpec("input", ("batch", 1, 8, 8), "float32")


def test_class_folder_gives_labelled_items_in_label_order(tmp_path):
    root = class_folder(tmp_path / "digits", 30)
    dataset = open_dataset(str(root), "eval")
    assert dataset.task == "classification" and dataset.labels == [str(i) for i in range(10)]
    assert len(dataset) == 30
    _, y = digit_images(30)
    assert sorted(i.label for i in dataset.items) == sorted(y.tolist())


def test_split_folders_pick_train_for_calibration_and_val_for_evaluation(tmp_path):
    class_folder(tmp_path / "set" / "train", 12, split="calib")
    class_folder(tmp_path / "set" / "val", 7)
    assert len(open_dataset(str(tmp_path / "set"), "calib")) == 12
    assert len(open_dataset(str(tmp_path / "set"), "eval")) == 7


def test_datatool_json_through_the_hook_preprocesses_to_the_eval_split(tmp_path):
    root = datatool_folder(tmp_path / "dt", 16)
    (root / "custom_dataset_model.py").write_text("raise SystemExit('dk must never execute this file')\n")
    dataset = evaluation.load_dataset(str(root), "eval")
    assert dataset.name == "digits-dt" and dataset.task == "classification"
    found = evaluation.evaluation_set(dataset, DIGITS_INPUT, default_model_meta())
    from dk.default_model import load_split

    x, y = load_split("eval")
    np.testing.assert_allclose(found.x, x[:16], atol=0.5 / 255 + 1e-6)
    assert found.y.tolist() == y[:16].tolist()


def test_datatool_detection_objects_with_coco_and_corner_boxes(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    save_png(tmp_path / "a.png", image)
    annotations = [{"id": "a", "file_name": "a.png", "objects": [
        {"label": "car", "bbox": [1, 2, 10, 5]}, {"class": {"name": "bus"}, "box": {"x1": 3, "y1": 4, "x2": 9, "y2": 8}}]}]
    (tmp_path / "dataset.json").write_text(json.dumps({"annotations": annotations}))
    dataset = open_dataset(str(tmp_path), "eval")
    assert dataset.task == "detection" and dataset.labels == ["bus", "car"]
    item = dataset.items[0]
    np.testing.assert_allclose(item.boxes, [[1, 2, 11, 7], [3, 4, 9, 8]])
    assert item.classes.tolist() == [1, 0]


def test_coco_file_maps_category_ids_and_xywh_boxes(tmp_path):
    dataset = open_dataset(str(coco_file(tmp_path / "coco")), "eval")
    assert dataset.task == "detection" and dataset.labels == ["box", "plate"]
    assert len(dataset) == 3 and dataset.items[0].classes.tolist() == [0, 1]
    np.testing.assert_allclose(dataset.items[0].boxes[0], [4, 6, 30, 40])


def test_missing_images_are_counted_and_named_and_the_rest_is_used(tmp_path, caplog):
    root = datatool_folder(tmp_path / "dt", 6)
    for name in ("0001.png", "0003.png", "0004.png", "0005.png"):
        (root / "images" / name).unlink()
    with caplog.at_level(logging.WARNING, logger="dk.data"):
        dataset = evaluation.load_dataset(str(root), "eval")
    assert len(dataset) == 2
    message = caplog.records[0].getMessage()
    assert "4 of 6 images listed in" in message and "images/0001.png; images/0003.png; images/0004.png (+1 more)" in message


def test_undecodable_images_are_skipped_with_one_warning(tmp_path, caplog):
    root = class_folder(tmp_path / "digits", 5)
    (root / "3" / "broken.png").write_bytes(b"not a png")
    dataset = open_dataset(str(root), "eval")
    with caplog.at_level(logging.WARNING, logger="dk.data"):
        samples = list(dataset.evaluation())
    assert len(samples) == 5
    assert "1 of 6 images of digits could not be decoded" in caplog.records[0].getMessage()


@pytest.mark.parametrize("content, message", [
    ('{"annotations": {', "cannot parse .*dataset.json: Expecting property name .* at line 1 column 18"),
    ('{"images": 3}', "neither a DataTool dataset.json .* nor a COCO file"),
    ('{"annotations": {"a": {"label": "1"}}}', "no usable entry among the 1 annotations .*a: no image path"),
    ('{"annotations": {"a": {"image": "gone.png", "label": "1"}}}', "none of the 1 images listed in .* exists"),
])
def test_bad_dataset_json_is_one_clear_error(tmp_path, content, message):
    (tmp_path / "dataset.json").write_text(content)
    with pytest.raises(DkError, match=message):
        open_dataset(str(tmp_path), "eval")


def test_empty_folder_and_unknown_location_are_clear_errors(tmp_path):
    with pytest.raises(DkError, match="holds no images"):
        open_dataset(str(tmp_path), "eval")
    (tmp_path / "x.txt").write_text("hello")
    assert open_dataset(str(tmp_path / "x.txt"), "eval") is None
    with pytest.raises(DkError, match="no installed plugin reads .*x.txt"):
        evaluation.load_dataset(str(tmp_path / "x.txt"), "eval")
    with pytest.raises(DkError, match="does not exist"):
        evaluation.load_dataset(str(tmp_path / "nope"), "eval")


def test_calibration_draw_is_deterministic_and_limited(tmp_path):
    dataset = open_dataset(str(class_folder(tmp_path / "digits", 40)), "calib")
    first = [s.item.id for s in dataset.calibration(10, seed=0)]
    assert first == [s.item.id for s in dataset.calibration(10, seed=0)]
    assert len(first) == 10 and len(set(first)) == 10
    assert first != [s.item.id for s in dataset.calibration(10, seed=1)]
    feeds = list(evaluation.calibration_batches(dataset, DIGITS_INPUT, default_model_meta(), size=20, batch=8))
    assert [f["input"].shape for f in feeds] == [(8, 1, 8, 8), (8, 1, 8, 8), (4, 1, 8, 8)]


def test_unknown_class_names_against_the_model_labels(tmp_path):
    save_png(tmp_path / "set" / "cat" / "a.png", np.zeros((8, 8), np.uint8))
    dataset = open_dataset(str(tmp_path / "set"), "eval")
    with pytest.raises(DkError, match="classes the model does not know: cat"):
        evaluation.evaluation_set(dataset, DIGITS_INPUT, default_model_meta())
