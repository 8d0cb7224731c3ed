"""``dk run infer``: arrays (.npy/.npz), an image, a folder of images, a video or a camera through
one engine, with the model's declared pre-processing and its task's post-processing; optionally
writing JSON, CSV (videos) and rendered images/videos into ``--output DIR``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from dk import api, pipeline
from dk.cli import render
from dk.errors import InputError, UsageError

CSV_HEADER = ("frame", "time_s", "rank", "class", "label", "score", "x1", "y1", "x2", "y2")


def infer(plugin: str, precision: str, opts: pipeline.BuildOptions, kw: dict[str, Any], as_json: bool) -> dict[str, Any]:
    input_path, camera, output = kw.get("input_path"), kw.get("camera"), kw.get("output")
    if input_path and camera is not None:
        raise UsageError("give --input PATH or --camera N, not both")
    kind = "camera" if camera is not None else _input_kind(input_path)
    if kind in ("eval", "arrays"):  # tensors in, tensors out: the original stage
        from dk.cli import stages

        return stages.infer(plugin, precision, opts, input_path, kw["batch"], as_json)
    out_dir = _output_dir(output) if output else None
    with render.step(f"building the {plugin} artifact", as_json):
        artifact = pipeline.build(plugin, precision, opts)
    with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
        runner = _Runner(plugin, engine, artifact.model_meta, kw["batch"])
        if kind in ("image", "folder"):
            result = _images(runner, Path(input_path), out_dir)
        else:
            from dk.vision.media import VideoSource

            with VideoSource(camera if kind == "camera" else str(input_path)) as video:
                result = _video(runner, video, out_dir, kw.get("frames"))
    result = {"stage": "infer", "plugin": plugin, "artifact": str(artifact.path), "input": input_path
              if kind != "camera" else f"camera {camera}", "kind": kind, "task": runner.task,
              "preprocessing": runner.spec.to_json(), **result}
    if not as_json:
        _table(plugin, result)
    return result


def _input_kind(path: str | None) -> str:
    from dk.vision.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_image, is_video

    if path is None:
        return "eval"
    file = Path(path)
    if file.suffix.lower() in (".npy", ".npz"):
        return "arrays"
    if file.is_dir():
        return "folder"
    if not file.exists():
        raise InputError(f"input {path} does not exist")
    if is_image(file):
        return "image"
    if is_video(file):
        return "video"
    raise InputError(
        f"input {path}: expected .npy/.npz arrays, an image ({', '.join(IMAGE_SUFFIXES[:4])}, ...), a folder of "
        f"images or a video ({', '.join(VIDEO_SUFFIXES[:3])}, ...)"
    )


def _output_dir(output: str) -> Path:
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output {output} is a file; infer writes into a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Runner:
    """Pre-process, run and post-process images in chunks the engine accepts."""

    def __init__(self, plugin: str, engine: Any, meta: dict[str, Any], batch: int):
        from dk.vision.preprocessing import PreprocessSpec

        self.plugin, self.engine, self.meta = plugin, engine, meta
        self.task = meta.get("task")
        self.spec = PreprocessSpec.from_meta(meta, engine.inputs[0])
        first = engine.inputs[0].shape[0]
        self.fixed = first if isinstance(first, int) else None
        self.chunk = self.fixed or batch
        self.infer_ms = 0.0

    def run(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        from dk.vision.preprocessing import preprocess, transform_for

        padded = images + [images[-1]] * ((self.fixed or len(images)) - len(images))
        feeds = {self.engine.inputs[0].name: preprocess(padded, self.spec)}
        start = time.perf_counter()
        outputs = api.infer(self.plugin, self.engine, feeds)
        self.infer_ms += (time.perf_counter() - start) * 1e3
        results = api.postprocess(self.task, outputs, self.meta) if self.task else None
        if results is None:
            return [{"outputs": {k: list(np.asarray(v).shape[1:]) for k, v in outputs.items()}} for _ in images]
        for result, image in zip(results, images):
            transform = transform_for(image.shape[:2], self.spec)
            for det in result.get("detections", []):
                det["box"] = [round(float(v), 2) for v in transform.boxes_to_image(det["box"], self.spec.size)[0]]
        return results[: len(images)]

    def chunks(self, images: Iterable[Any]) -> Iterator[list[Any]]:
        chunk = []
        for image in images:
            chunk.append(image)
            if len(chunk) == self.chunk:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _images(runner: _Runner, path: Path, out_dir: Path | None) -> dict[str, Any]:
    from dk.vision.media import list_images, read_image, write_image, write_json

    files = list_images(path) if path.is_dir() else [path]
    entries, failed = [], []
    for chunk in runner.chunks(files):
        decoded = []
        for file in chunk:
            try:
                decoded.append((file, read_image(file)))
            except InputError as exc:
                failed.append(str(exc))
        if not decoded:
            continue
        for (file, image), result in zip(decoded, runner.run([img for _, img in decoded])):
            entries.append({"file": str(file), "height": image.shape[0], "width": image.shape[1], **result})
            if out_dir is not None:
                from dk.vision.drawing import render as draw, scale_for

                rendered = rendered_name(file)
                write_image(out_dir / rendered, draw(image, result))
                entries[-1].update(rendered=rendered, rendered_scale=scale_for(image))
    if failed:
        from dk.vision.dataset import few

        render.note(f"[yellow]warning:[/] {few(f'{len(failed)} of {len(files)} images could not be decoded', failed)}")
    if not entries:
        raise InputError(f"none of the {len(files)} images in {path} could be decoded")
    result = {"infer_ms": runner.infer_ms, "images": entries, "skipped": failed}
    if out_dir is not None:
        result["rendered_scale"] = max(e.get("rendered_scale", 1) for e in entries)
        write_json(out_dir / "results.json", result)
        result["written"] = str(out_dir)
    return result


def rendered_name(image_file: Path) -> str:
    """The file name of an image's render: its whole name, extension included, then ``.png``
    (``a.jpg.png``, ``a.png.png``), so the renders of ``a.jpg`` and ``a.png`` do not overwrite each other."""
    return f"{image_file.name}.png"


def _video(runner: _Runner, video: Any, out_dir: Path | None, limit: int | None) -> dict[str, Any]:
    from dk.vision.drawing import render as draw, scale_for
    from dk.vision.media import VideoSink, write_csv, write_json

    scale = 1
    stem = "camera" if isinstance(video.source, int) else Path(video.source).stem
    sink, frames, rows, index = None, [], [], 0
    try:
        for chunk in runner.chunks(video.frames(limit)):
            for frame, result in zip(chunk, runner.run(chunk)):
                seconds = round(index / video.fps, 4)
                frames.append({"frame": index, "time_s": seconds, **result})
                rows += _csv_rows(index, seconds, result)
                if out_dir is not None:
                    drawn = draw(frame, result)
                    scale = scale_for(frame)
                    sink = sink or VideoSink(out_dir / f"{stem}.mp4", video.fps, drawn.shape[:2])
                    sink.write(drawn)
                index += 1
    except BaseException:
        if sink is not None:
            sink.discard()
        raise
    if not frames:
        raise InputError(f"video {video.source} has no frame that could be decoded")
    result = {"infer_ms": runner.infer_ms, "fps": video.fps, "frames": frames}
    if out_dir is not None:
        result["rendered_scale"] = scale
        sink.commit()
        write_csv(out_dir / f"{stem}.csv", CSV_HEADER, rows)
        write_json(out_dir / f"{stem}.json", result)
        result["written"] = str(out_dir)
    return result


def _csv_rows(frame: int, seconds: float, result: dict[str, Any]) -> list[list[Any]]:
    if "detections" in result:
        return [[frame, seconds, r, d["class"], d["label"], round(d["score"], 5), *d["box"]]
                for r, d in enumerate(result["detections"])]
    if "top_k" in result:
        best = result["top_k"][0]
        return [[frame, seconds, 0, best["class"], best["label"], round(best["score"], 5), "", "", "", ""]]
    return [[frame, seconds, "", "", "", "", "", "", "", ""]]


def _summary(result: dict[str, Any]) -> str:
    if "detections" in result:
        found = result["detections"]
        return f"{len(found)} objects" + (": " + ", ".join(f"{d['label']} {d['score']:.2f}" for d in found[:4]) if found else "")
    if "top_k" in result:
        return f"{result['top_k'][0]['label']} {result['top_k'][0]['score']:.3f}"
    return "raw outputs " + ", ".join(f"{k} {v}" for k, v in result.get("outputs", {}).items())


#: The terminal table of a video shows this many frames; every frame is in --json and --output.
TABLE_FRAMES = 20


def _table(plugin: str, result: dict[str, Any]) -> None:
    title = f"dk run infer --plugin {plugin} ({result['infer_ms']:.2f} ms inference)"
    images = result.get("images")
    if images and len(images) == 1 and images[0].get("top_k"):  # one image: its top-k, as the docs show
        entry = images[0]
        rows = [{"rank": i + 1, "class": t["class"], "label": t["label"], "score": f"{t['score']:.4g}"}
                for i, t in enumerate(entry["top_k"])]
        render.rows_table(f"{title}: {Path(entry['file']).name}, top {len(rows)}", rows,
                          [("rank", "rank"), ("class", "class"), ("label", "label"), ("score", "score")])
    elif images:
        rows = [{"item": Path(e["file"]).name, "result": _summary(e)} for e in images]
        render.rows_table(title, rows, [("item", "input"), ("result", "result")])
    else:
        frames = result["frames"]
        rows = [{"item": f"frame {f['frame']}", "result": _summary(f)} for f in frames[:TABLE_FRAMES]]
        render.rows_table(title, rows, [("item", "input"), ("result", "result")])
        if len(frames) > TABLE_FRAMES:
            where = f" in {result['written']}" if result.get("written") else " with --json or --output DIR"
            render.note(f"showing the first {TABLE_FRAMES} of {len(frames)} frames; every frame is{where}")
    if result.get("written"):
        scale = result.get("rendered_scale", 1)
        enlarged = f" (small inputs enlarged {scale}x, nearest neighbour, so that the labels are legible)" if scale > 1 else ""
        render.note(f"wrote results and rendered outputs to {result['written']}{enlarged}")
