"""The floor under ``dk serve``: the least a Python server can do for one binary OIP infer request.

    python benchmarks/_bare_oip_server.py MODEL.onnx

A raw asyncio protocol on the event loop ``dk serve`` gets (uvloop when installed, as uvicorn
picks it), with the same engine-thread hop as dk's (a queue put in, one ``call_soon_threadsafe``
out) and the same ORT session options; it parses only what ``bench_serve_overhead.LeanClient``
sends (Content-Length, Inference-Header-Content-Length, the JSON header's shape) and answers the
first output as a binary tensor. No checks, limits, metrics, routing or ASGI: whatever ``dk serve``
costs above this is dk's; what this costs is the event loop, the socket and the thread hop on the
machine at hand. Prints ``ready PORT`` once it listens on loopback. Only for the benchmark: never expose it.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
import threading

import numpy as np


def main(model: str) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    calls: queue.SimpleQueue = queue.SimpleQueue()

    def engine_thread() -> None:
        while True:
            loop, future, x = calls.get()
            y = session.run([output_name], {input_name: x})[0]
            loop.call_soon_threadsafe(future.set_result, y)

    threading.Thread(target=engine_thread, daemon=True).start()

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.transport, self.buffer, self.busy = transport, bytearray(), False

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if self.busy or (end := self.buffer.find(b"\r\n\r\n")) < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").lower().split("\r\n")[1:]
            fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            length, split = int(fields["content-length"]), int(fields["inference-header-content-length"])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4: end + 4 + length]
            del self.buffer[: end + 4 + length]
            shape = json.loads(bytes(body[:split]))["inputs"][0]["shape"]
            self.busy = True
            asyncio.ensure_future(self.answer(np.frombuffer(body, np.float32, offset=split).reshape(shape)))

        async def answer(self, x: np.ndarray) -> None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            calls.put((loop, future, x))
            y = await future
            header = json.dumps({"outputs": [{"name": output_name, "shape": list(y.shape), "datatype": "FP32",
                                              "parameters": {"binary_data_size": y.nbytes}}],
                                 "parameters": {}}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                                 b"inference-header-content-length: %d\r\ncontent-length: %d\r\n\r\n"
                                 % (len(header), len(header) + y.nbytes) + header + y.tobytes())
            self.busy = False
            if self.buffer:
                self.data_received(b"")

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", 0)
        print("ready", server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main(sys.argv[1])
