"""Reading images, folders, videos and cameras, and writing rendered results, all atomically.

Images decode with Pillow (or OpenCV when Pillow is absent); videos and cameras need OpenCV
(``pip install opencv-python-headless``). Every image is returned as ``H x W x 3`` uint8 RGB.
Every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from dk.errors import InputError, MissingDependency

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
PILLOW_HINT = "pip install pillow"
OPENCV_HINT = "pip install opencv-python-headless"


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to ``H x W x 3`` uint8 RGB, or raise :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {path} does not exist")
    if has_module("PIL"):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"cannot decode image {path}: {_short(exc)}") from None
    if has_module("cv2"):
        import cv2

        data = np.fromfile(path, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise InputError(f"cannot decode image {path}: not an image OpenCV can read")
        return np.ascontiguousarray(bgr[:, :, ::-1])
    raise MissingDependency(f"reading images needs Pillow: {PILLOW_HINT}")


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted by path), or :class:`InputError` when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and is_image(p))
    if not files:
        raise InputError(f"folder {folder} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


class VideoSource:
    """Frames of a video file or camera as RGB arrays; ``fps`` and ``size`` known after opening."""

    def __init__(self, source: str | int):
        cv2 = _cv2(f"reading {'camera' if isinstance(source, int) else 'video'} input")
        self.source = source
        if isinstance(source, str) and not Path(source).is_file():
            raise InputError(f"video {source} does not exist")
        with _decoder_log_silenced():  # FFmpeg's own "moov atom not found": dk says it in one line below
            self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture.release()
            if isinstance(source, int):
                raise InputError(f"no camera {source} on this machine (OpenCV could not open it); use --input FILE")
            raise InputError(f"cannot open video {source}: not a video OpenCV can decode")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.size = (
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        count = 0
        while limit is None or count < limit:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                return
            count += 1
            yield np.ascontiguousarray(frame[:, :, ::-1])

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class VideoSink:
    """An mp4 written frame by frame under a temporary name, renamed into place by :meth:`commit`."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        cv2 = _cv2("writing video output")
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp-{uuid.uuid4().hex[:8]}{self.path.suffix}")
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
        if not self._writer.isOpened():
            raise InputError(f"cannot write video {self.path}: OpenCV has no mp4v encoder here")
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def commit(self) -> None:
        self._writer.release()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._writer.release()
        self._tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed to ``path`` on success, removed on error."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if has_module("PIL"):
            from PIL import Image

            Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(tmp, format=_pil_format(path))
        else:
            cv2 = _cv2("writing images")
            if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[:, :, ::-1])):
                raise InputError(f"cannot write image {path}")


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)


def _pil_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper() or "PNG")


def _cv2(what: str) -> Any:
    if not has_module("cv2"):
        raise MissingDependency(f"{what} needs OpenCV: {OPENCV_HINT}")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # no camera-probing chatter on stderr
    import cv2

    return cv2


@contextlib.contextmanager
def _decoder_log_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while OpenCV opens a video: FFmpeg logs with its own
    C ``fprintf(stderr)`` (no Python logging, no OpenCV log level reaches it), which printed
    ``[mov,mp4,...] moov atom not found`` before dk's own one-line error for a file that is no video."""
    import sys

    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()  # what Python wrote before stays before, and is not lost
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
