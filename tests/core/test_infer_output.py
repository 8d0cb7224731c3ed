"""What ``dk run infer`` prints and renders for a person: one image's top 5, the frames a video table
leaves out, the enlargement of rendered outputs, and labels sized to the picture."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import run_dk
from tests.digit_images import digit_images, save_png

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("PIL", reason="Pillow is not installed (pip install pillow)")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


def _rows(stdout: str) -> list[list[str]]:
    """The body rows of a rich table: the cells between the vertical bars."""
    return [[c.strip() for c in line.strip("│ ").split("│")] for line in stdout.splitlines() if line.startswith("│")]


def test_one_image_prints_its_top_5_with_labels(tmp_path, artifacts):
    images, labels = digit_images(1)
    save_png(tmp_path / "digit.png", images[0])
    proc = run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "digit.png"), "--out", str(artifacts))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"dk run infer --plugin ort \([\d.]+ ms inference\): digit\.png, top 5", proc.stdout)
    rows = _rows(proc.stdout)
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0][2] == str(labels[0])
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5


def test_rendered_outputs_say_they_were_enlarged(tmp_path, artifacts):
    images, labels = digit_images(2)
    for i, image in enumerate(images):
        save_png(tmp_path / "in" / f"{i}.png", image)
    out = tmp_path / "out"
    proc = run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "in"), "--output", str(out),
                  "--out", str(artifacts))
    assert proc.returncode == 0, proc.stderr
    assert " ".join(proc.stderr.split()).endswith(f"wrote results and rendered outputs to {out} (small inputs enlarged 4x, "
                                        "nearest neighbour, so that the labels are legible)")
    written = json.loads((out / "results.json").read_text())
    assert written["rendered_scale"] == 4 and [e["rendered_scale"] for e in written["images"]] == [4, 4]
    assert [r[1].split()[0] for r in _rows(proc.stdout)] == [str(v) for v in labels]  # a folder: top-1 per image


def test_a_video_table_says_how_many_frames_it_leaves_out(tmp_path, artifacts):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    images, _ = digit_images(25)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (32, 32))
    for image in images:
        writer.write(np.repeat(image[:, :, None], 3, axis=2))
    writer.release()
    proc = run_dk("run", "infer", "--plugin", "ort", "--input", str(tmp_path / "clip.mp4"), "--out", str(artifacts))
    assert proc.returncode == 0, proc.stderr
    assert [r[0] for r in _rows(proc.stdout)] == [f"frame {i}" for i in range(20)]
    assert "showing the first 20 of 25 frames; every frame is with --json or --output DIR" in " ".join(proc.stderr.split())


def _caption_height(image: np.ndarray) -> int:
    """Rows of the black caption band at the top-left of a rendered classification result."""
    from dk.vision.drawing import render

    drawn = render(image, {"top_k": [{"class": 3, "label": "three", "score": 0.91}]})
    column = drawn[:, 1, :3].astype(int).sum(axis=1)
    return int(np.argmax(column != 0))


def test_the_label_grows_with_the_picture():
    from dk.vision.drawing import scale_for, text_size

    grey = lambda h, w: np.full((h, w, 3), 128, np.uint8)  # noqa: E731
    assert scale_for(grey(32, 32)) == 4 and scale_for(grey(720, 1280)) == 1
    assert text_size((128, 128)) == 14 and text_size((720, 1280)) == 36 and text_size((2160, 3840)) == 108
    small, large = _caption_height(grey(128, 128)), _caption_height(grey(720, 1280))
    assert 14 <= small <= 24 and large >= 36 and 0.03 <= large / 720 <= 0.08
