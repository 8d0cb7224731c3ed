"""Route handlers: OIP v2 (health, metadata, infer), ``POST /inference``, metrics and upload."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import numpy as np

from dk import __version__
from dk.serve import trace
from dk.serve.bodies import read_limited
from dk.serve.classification import top_classes
from dk.serve.images import image_to_tensor
from dk.serve.limits import HttpError, byte_count
from dk.serve.responses import json_response
from dk.serve.tensors import BINARY_HEADER_BYTES, datatype_of, decode_request, encode_response, oip_shape
from dk.serve.upload import open_uploaded, store_upload
from dk.serve.worker import MODEL_VERSION, Worker

#: Images and outputs larger than this are decoded or encoded in a worker thread, not on the event loop.
OFFLOAD_BYTES = 1 << 20
#: JSON larger than this is checked and parsed in a worker thread (JSON tensors parse in 20-65 ms per
#: MiB on the development machine, benchmarks/bench_serve_parse.py: a few ms on the loop at most).
JSON_OFFLOAD_BYTES = 256 << 10


async def read_body(worker: Worker, request: Any, align_at: int | None = None) -> bytes | bytearray | memoryview:
    """The request body (gzip/deflate decompressed) within ``--max-body`` and the body timeout;
    marks it read so that errors after it keep the connection. ``align_at``: see ``read_limited``."""
    headers, config = request.headers, worker.config
    body = await read_limited(request.stream(), headers.get("content-length"), config.max_body,
                              encoding=headers.get("content-encoding"), timeout=config.body_timeout_s,
                              align_at=align_at)
    request.state.body_read = True
    return body


async def live(worker: Worker, request: Any) -> Any:
    return json_response({"live": True})


async def ready(worker: Worker, request: Any) -> Any:
    worker.require_ready()
    return json_response({"ready": True})


async def model_ready(worker: Worker, request: Any) -> Any:
    worker.require_model(request.path_params["name"], request.path_params.get("version"))
    worker.require_ready()
    return json_response({"name": worker.model.name, "ready": True})


async def server_metadata(worker: Worker, request: Any) -> Any:
    extensions = ["binary_tensor_data", "classification", "model_configuration", "model_repository"] + (
        ["model_repository_upload"] if worker.config.allow_upload else [])
    return json_response({"name": "dk", "version": __version__, "extensions": extensions,
                          "models": [worker.model.name]})


async def model_metadata(worker: Worker, request: Any) -> Any:
    worker.require_model(request.path_params["name"], request.path_params.get("version"))
    runner = worker.require_ready()
    engine, model = runner.engine, worker.model

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": datatype_of(s.dtype), "shape": oip_shape(s)} for s in specs]

    return json_response({
        "name": model.name, "versions": [MODEL_VERSION], "platform": f"dk-{model.plugin}" if model.plugin else "dk",
        "inputs": tensors(engine.inputs), "outputs": tensors(engine.outputs),
        "parameters": {"precision": model.precision, "task": model.meta.get("task"), "artifact": model.artifact,
                       "source_sha256": model.source_sha256, "device": engine.device,
                       "dk_inputs": [s.to_json() for s in engine.inputs], "model": model.meta, **runner.describe()},
    })


#: OIP datatype -> Triton model-configuration data_type.
_CONFIG_TYPES = {"BOOL": "TYPE_BOOL", "BYTES": "TYPE_STRING"}


async def model_config(worker: Worker, request: Any) -> Any:
    """Triton's model configuration extension (tritonclient ``get_model_config``): what dk knows."""
    worker.require_model(request.path_params["name"], request.path_params.get("version"))
    runner = worker.require_ready()
    engine, model = runner.engine, worker.model
    batcher = runner.batcher

    def tensors(specs: Any) -> list[dict[str, Any]]:
        out = []
        for s in specs:
            datatype = datatype_of(s.dtype)
            dims = oip_shape(s)
            out.append({"name": s.name, "data_type": _CONFIG_TYPES.get(datatype, f"TYPE_{datatype}"),
                        "dims": dims[1:] if batcher is not None else dims})
        return out

    config: dict[str, Any] = {
        "name": model.name, "platform": f"dk-{model.plugin}" if model.plugin else "dk", "backend": "dk",
        "version_policy": {"specific": {"versions": [int(MODEL_VERSION)]}},
        "max_batch_size": batcher.max_batch if batcher is not None else 0,
        "input": tensors(engine.inputs), "output": tensors(engine.outputs),
        "instance_group": [{"count": runner.concurrency, "kind": "KIND_CPU" if engine.device == "cpu" else "KIND_GPU"}],
        "parameters": {"precision": {"string_value": model.precision}, "artifact": {"string_value": model.artifact}},
    }
    if batcher is not None:
        config["dynamic_batching"] = {"max_queue_delay_microseconds": int(batcher.max_delay * 1e6)}
    return json_response(config)


async def repository_index(worker: Worker, request: Any) -> Any:
    """The model repository extension's index (tritonclient ``get_model_repository_index``): the one model."""
    await read_body(worker, request)
    state = "READY" if worker.status == "ready" else "UNAVAILABLE"
    entry = {"name": worker.model.name, "version": MODEL_VERSION, "state": state}
    if state != "READY":
        entry["reason"] = worker.reason
    return json_response([entry])


async def infer(worker: Worker, request: Any) -> Any:
    """OIP v2 infer. Only the JSON part is parsed (in a worker thread when it is large, so that
    liveness keeps answering); binary tensors are views of the received body."""
    worker.require_model(request.path_params["name"], request.path_params.get("version"))
    runner = worker.require_ready()
    start = time.perf_counter()
    given = [v.decode("latin-1") for k, v in request.scope["headers"] if k == BINARY_HEADER_BYTES]
    if len(given) > 1:
        raise HttpError(400, f"Inference-Header-Content-Length is given {len(given)} times; send it once")
    header = given[0] if given else None
    body = await read_body(worker, request, align_at=byte_count(header))
    content, headers = await answer_infer(worker, runner, body, header, start, request.scope)
    from starlette.responses import Response

    return Response(content, headers=headers)


async def answer_infer(worker: Worker, runner: Any, body: bytes | bytearray | memoryview, header: str | None,
                       start: float, scope: Any) -> tuple[bytes, dict[str, str]]:
    """The body and headers answering an infer request whose ``body`` has been read (``header``:
    its Inference-Header-Content-Length, ``start``: when its handling began); also the
    protocol's fast path (:mod:`dk.serve.fast_infer`)."""
    received = time.perf_counter()
    config = worker.config
    json_bytes = len(body) if byte_count(header) is None else byte_count(header)
    if json_bytes > JSON_OFFLOAD_BYTES:
        decoded = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
            decode_request, body, header, runner.engine.inputs, max_depth=config.max_json_depth,
            max_bytes=config.max_body))
    else:
        decoded = decode_request(body, header, runner.engine.inputs, max_depth=config.max_json_depth,
                                 max_bytes=config.max_body)
    decoded_at = time.perf_counter()
    outputs, timing = await runner.infer(decoded.inputs)
    resumed = time.perf_counter()
    if decoded.requested_outputs is not None:
        unknown = [n for n in decoded.requested_outputs if n not in outputs]
        if unknown:
            raise HttpError(400, f"unknown output(s) {', '.join(repr(n[:64]) for n in unknown)}; the model has "
                                 f"{', '.join(map(repr, outputs))}")
        outputs = {n: outputs[n] for n in decoded.requested_outputs}
    for name, k in decoded.classification.items():
        outputs[name] = top_classes(name, outputs[name], k, worker.model.meta.get("labels"))
    params = {"decode_ms": (decoded_at - received) * 1e3, "queue_ms": timing.queue_ms, "infer_ms": timing.infer_ms,
              "batch": timing.batch, "server_ms": (time.perf_counter() - start) * 1e3}
    if trace.ENABLED:
        params["trace_ms"] = trace.stages(scope, {
            "start": start, "received": received, "decoded": decoded_at, "engine_start": timing.engine_start,
            "engine_end": timing.engine_end, "resumed": resumed, "encoded": time.perf_counter()})
    encode = (worker.model.name, MODEL_VERSION, decoded.id, outputs, decoded.binary_outputs, params,
              decoded.binary_overrides)
    if sum(v.nbytes for v in outputs.values()) > OFFLOAD_BYTES:
        return await asyncio.get_running_loop().run_in_executor(None, encode_response, *encode)
    return encode_response(*encode)


async def inference(worker: Worker, request: Any) -> Any:
    """Raw JPEG/PNG in, post-processed results and pre/infer/post timings out (LPDNN worker style)."""
    from dk import api

    runner = worker.require_ready()
    start = time.perf_counter()
    body = await read_body(worker, request)
    engine = runner.engine
    if len(engine.inputs) != 1 or len(engine.inputs[0].shape) != 4:
        raise HttpError(400, f"image inference needs a model with one image input; send tensors to the "
                             f"OIP v2 infer endpoint of model {worker.model.name!r} instead")
    spec = engine.inputs[0]
    pre = worker.model.meta.get("preprocessing") or {}
    received = time.perf_counter()
    if len(body) > OFFLOAD_BYTES:
        x = await asyncio.get_running_loop().run_in_executor(
            None, image_to_tensor, body, spec, pre, worker.config.max_image_pixels)
    else:
        x = image_to_tensor(body, spec, pre, worker.config.max_image_pixels)
    pre_done = time.perf_counter()
    outputs, timing = await runner.infer({spec.name: x})
    infer_done = time.perf_counter()
    task = worker.model.meta.get("task")
    items = api.postprocess(task, outputs, worker.model.meta) if task else None
    if items is None:
        items = [{name: np.asarray(v)[0].tolist() for name, v in outputs.items()}]
    done = time.perf_counter()
    return json_response({
        "model": worker.model.name,
        "time": {"pre_processing_ms": (pre_done - received) * 1e3, "infer_ms": timing.infer_ms,
                 "queue_ms": timing.queue_ms, "post_processing_ms": (done - infer_done) * 1e3,
                 "processing_ms": (done - start) * 1e3},
        "items": items,
    })


async def metrics(worker: Worker, request: Any) -> Any:
    from starlette.responses import Response

    return Response(worker.metrics.render(), media_type="text/plain; version=0.0.4")


async def upload(worker: Worker, request: Any) -> Any:
    encoding = (request.headers.get("content-encoding") or "").strip().lower()
    if encoding not in ("", "identity"):  # stored as sent: a compressed body would be stored compressed
        raise HttpError(415, f"Content-Encoding {encoding[:32]!r} is not supported for uploads; send the .onnx file "
                             "uncompressed")
    info = await store_upload(request.path_params["name"], request.stream(), request.headers.get("content-length"),
                              worker.config.store, worker.config.max_upload, worker.config.body_timeout_s)
    request.state.body_read = True
    return json_response({"stored": True, **info}, status=201)


async def load(worker: Worker, request: Any) -> Any:
    """OIP model repository ``load``: serve an uploaded model instead of the current one."""
    request.state.body_read = True  # the body, if any, is not used
    if worker.swap_lock.locked():
        raise HttpError(409, "another model is being loaded; try again when it is done")
    async with worker.swap_lock:
        config = worker.config
        engine, model = await asyncio.get_running_loop().run_in_executor(
            None, open_uploaded, request.path_params["name"], worker.model.plugin, config)
        await worker.swap(engine, model)
    return json_response({"name": model.name, "loaded": True, "plugin": model.plugin, "precision": model.precision})


async def not_found(worker: Worker, request: Any) -> Any:
    raise HttpError(404, "no such endpoint; the server metadata (GET /v2) names the model to infer with")


async def method_not_allowed(worker: Worker, request: Any) -> Any:
    raise HttpError(405, f"method {request.method[:16]} is not allowed on this endpoint")
