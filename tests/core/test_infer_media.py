"""``dk run infer`` on images, folders, videos and cameras; the SSD-lite detector end to end with
NMS parity between the torch and ort engines; bad media as one error line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_dk
from tests.digit_images import coco_file, digit_images, save_png, scene

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("PIL", reason="Pillow is not installed (pip install pillow)")


def _json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")][0]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def detector(artifacts):
    """The SSD-lite demo detector exported once through the torch plugin (task and outputs named)."""
    pytest.importorskip("torch", reason="torch is not installed")
    result = _json(run_dk("run", "export", "--plugin", "torch", "--model", "dk_torch.models:ssdlite_tiny",
                          "--shapes", "input:1x3x64x64", "-o", "task=detection", "-o", "output_names=boxes,scores",
                          "--out", str(artifacts), "--json"))
    return result["artifact"]["path"]


def test_folder_of_digit_pngs_is_classified_and_rendered(tmp_path, artifacts):
    images, labels = digit_images(6)
    for i, image in enumerate(images):
        save_png(tmp_path / "in" / f"{i}_{labels[i]}.png", image)
    result = _json(run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "in"),
                          "--output", str(tmp_path / "out"), "--out", str(artifacts), "--json"))
    assert result["kind"] == "folder" and result["task"] == "classification"
    predicted = [e["top_k"][0]["label"] for e in result["images"]]
    assert predicted == [str(v) for v in labels]
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [e["file"] for e in written["images"]] == [e["file"] for e in result["images"]]
    from PIL import Image

    rendered = np.asarray(Image.open(tmp_path / "out" / f"0_{labels[0]}.png.png"))
    enlarged = np.kron(images[0], np.ones((4, 4), np.uint8))  # 32 -> 128 so that the caption is legible
    assert rendered.shape == (128, 128, 3)
    assert np.array_equal(rendered[20:, :, 0], enlarged[20:])  # the picture below the caption is untouched
    caption = rendered[:15, :30, 0]
    assert (caption == 0).mean() > 0.5 and caption.max() > 200  # light text on a black band


def test_detector_on_one_image_gives_pixel_boxes_inside_it(tmp_path, artifacts, detector):
    save_png(tmp_path / "scene.png", scene((96, 128), [(10, 10, 60, 50), (70, 40, 120, 90)]))
    result = _json(run_dk("run", "infer", "--plugin", "ort", "--model", detector, "--input", str(tmp_path / "scene.png"),
                          "--out", str(artifacts), "--json"))
    found = result["images"][0]["detections"]
    assert result["task"] == "detection" and found
    boxes = np.array([d["box"] for d in found])
    assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= 128).all() and (boxes[:, [1, 3]] <= 96).all()
    assert all(d["score"] > 0.5 for d in found)  # the default score threshold


def test_nms_parity_between_torch_and_ort_on_a_video(tmp_path, artifacts, detector):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 80))
    for i in range(4):
        writer.write(scene((80, 96), [(5 + 6 * i, 10, 45 + 6 * i, 50)], seed=i))
    writer.release()
    runs = {}
    for plugin in ("torch", "ort"):
        out = tmp_path / plugin
        runs[plugin] = _json(run_dk("run", "infer", "--plugin", plugin, "--artifact", detector, "--input",
                                    str(tmp_path / "clip.mp4"), "--output", str(out), "--json"))
        assert (out / "clip.mp4").stat().st_size > 0
        rows = list(csv.DictReader(open(out / "clip.csv")))
        assert len(rows) == sum(len(f["detections"]) for f in runs[plugin]["frames"])
        assert {int(r["frame"]) for r in rows} <= set(range(4))
        probe = cv2.VideoCapture(str(out / "clip.mp4"))
        assert int(probe.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    torch_frames, ort_frames = runs["torch"]["frames"], runs["ort"]["frames"]
    assert len(torch_frames) == len(ort_frames) == 4
    for a, b in zip(torch_frames, ort_frames):
        assert [d["class"] for d in a["detections"]] == [d["class"] for d in b["detections"]]
        np.testing.assert_allclose([d["box"] for d in a["detections"]], [d["box"] for d in b["detections"]], atol=0.05)
        np.testing.assert_allclose([d["score"] for d in a["detections"]], [d["score"] for d in b["detections"]], atol=1e-4)
    assert sum(len(f["detections"]) for f in torch_frames) >= 20  # enough boxes for NMS to matter


def test_detection_map_on_a_coco_file(tmp_path, detector):
    from dk import api, pipeline
    from dk.artifacts import Artifact
    from dk.vision import evaluation

    artifact = Artifact.load(detector)
    opts = pipeline.BuildOptions(artifact=detector, data=str(coco_file(tmp_path / "coco")))
    with api.load_engine("ort", artifact) as engine:
        data = pipeline.eval_data(opts, engine)
        outputs = pipeline.run_all(engine, data.x)
    metrics = evaluation.evaluate(outputs, data.evaluation, artifact.model_meta)
    assert data.name == "instances.json (3 detection images)" and metrics["task"] == "detection"
    assert metrics["images"] == 3 and [c["label"] for c in metrics["per_class"]] == ["0", "1"]
    assert 0.0 <= metrics["map"] <= metrics["map50"] <= 1.0


def test_bench_on_a_coco_file_reports_detection_map(tmp_path, detector):
    result = _json(run_dk("run", "bench", "--plugin", "ort", "--artifact", detector, "--data",
                          str(coco_file(tmp_path / "coco")), "--iterations", "3", "--warmup", "1",
                          "--hw-interval", "0", "--json"))
    metrics = result["runs"][0]["metrics"]
    assert metrics["task"] == "detection" and metrics["images"] == 3
    assert 0.0 <= metrics["map"] <= metrics["map50"] <= 1.0


def test_bad_media_are_one_error_line_each(tmp_path, artifacts):
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_bytes(b"no video here")
    (tmp_path / "bad.png").write_bytes(b"no image here")
    (tmp_path / "notes.txt").write_text("hello")
    base = ("run", "infer", "--plugin", "ort", "--out", str(artifacts))
    assert _error(run_dk(*base, "--input", str(tmp_path / "empty"))).startswith(f"error: folder {tmp_path / 'empty'} holds no images")
    bad_video = run_dk(*base, "--input", str(tmp_path / "bad.mp4"))
    assert _error(bad_video) == f"error: cannot open video {tmp_path / 'bad.mp4'}: not a video OpenCV can decode"
    assert bad_video.stderr.splitlines() == [_error(bad_video)]  # FFmpeg's "moov atom not found" stays out
    assert _error(run_dk(*base, "--input", str(tmp_path / "bad.png"))).startswith(
        f"error: none of the 1 images in {tmp_path / 'bad.png'} could be decoded")
    assert _error(run_dk(*base, "--input", str(tmp_path / "notes.txt"))).startswith("error: input")
    assert _error(run_dk(*base, "--camera", "7")) == "error: no camera 7 on this machine (OpenCV could not open it); use --input FILE"


def test_images_of_one_name_and_two_extensions_get_a_render_each(tmp_path, artifacts):
    from PIL import Image

    images, labels = digit_images(2)
    (tmp_path / "in").mkdir()
    Image.fromarray(images[0]).save(tmp_path / "in" / "a.jpg", quality=100)
    save_png(tmp_path / "in" / "a.png", images[1])

    result = _json(run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "in"),
                          "--output", str(tmp_path / "out"), "--out", str(artifacts), "--json"))

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.png.png", "results.json"]
    assert [(Path(e["file"]).name, e["rendered"]) for e in result["images"]] == [
        ("a.jpg", "a.jpg.png"), ("a.png", "a.png.png")]
    png_render = np.asarray(Image.open(tmp_path / "out" / "a.png.png"))
    assert np.array_equal(png_render[20:, :, 0], np.kron(images[1], np.ones((4, 4), np.uint8))[20:])
