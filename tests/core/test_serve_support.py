"""Helpers for the dk serve tests (no tests here): a numpy engine that needs no engine library,
an in-process ASGI caller that can stream a body in chunks, and sample images."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from typing import Any, Iterable, Mapping

import numpy as np

from dk.engine import Engine, InputChecker
from dk.specs import TensorSpec

DIGITS_META = {
    "name": "digitsnet", "task": "classification", "labels": [str(i) for i in range(10)],
    "preprocessing": {"layout": "NCHW", "colour": "gray", "input_range": [0, 16], "scale": 0.0625,
                      "mean": [0.0], "std": [1.0], "resize": None},
}


class LinearEngine(Engine):
    """logits = flatten(input) @ W with a fixed W; records the batch size of every call."""

    def __init__(self, batch: int | str = "batch", delay: float = 0.0):
        self.name, self.device, self.precision = "linear", "cpu", "fp32"
        self.inputs = [TensorSpec("input", (batch, 1, 8, 8), "float32")]
        self.outputs = [TensorSpec("logits", (batch, 10), "float32")]
        self.weights = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
        self._check = InputChecker(self.inputs)
        self.delay = delay
        self.calls: list[int] = []
        self.closed = False
        self.lock = threading.Lock()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        x = inputs["input"]
        with self.lock:
            self.calls.append(len(x))
        if self.delay:
            time.sleep(self.delay)
        return {"logits": x.reshape(len(x), 64) @ self.weights}

    def close(self) -> None:
        self.closed = True


def make_app(engine: Any = None, **config: Any):
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig

    model = ModelInfo(name="digitsnet", plugin="test", meta=dict(DIGITS_META), artifact="linear")
    return create_app(engine if engine is not None else LinearEngine(), ServeConfig(model_name="digitsnet", **config),
                      model)


async def call(app: Any, method: str, path: str, body: bytes | Iterable[bytes] = b"",
               headers: Mapping[str, str] | None = None, content_length: bool = True) -> tuple[int, dict, bytes]:
    """One request straight into the ASGI app; ``body`` may be a list of chunks (streamed)."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    if content_length and "content-length" not in hdrs:
        hdrs["content-length"] = str(sum(len(c) for c in chunks))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode("latin-1")) for k, v in hdrs.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: dict[str, Any] = {"body": b""}

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            sent["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    await asyncio.wait_for(app(scope, receive, send), 30)
    return sent["status"], sent["headers"], sent["body"]


def infer_body(x: np.ndarray, name: str = "input", datatype: str = "FP32") -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype,
                                   "data": x.ravel().tolist()}]}).encode()


def digit_png(kind: str = "PNG", index: int = 0) -> tuple[bytes, np.ndarray]:
    """A digit of the embedded eval split as an image, and the model input it should become."""
    from PIL import Image

    from dk.default_model import DATA_PATH

    with np.load(DATA_PATH) as data:
        raw = data["x_eval"][index]
    pixels = np.round(raw * 255 / 16).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind)
    return buffer.getvalue(), (pixels.astype(np.float32) / 255)[None, None]
