"""The ASGI application: routes, error handling, metrics, readiness, start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Awaitable, Callable

from dk.engine import Engine
from dk.serve import handlers
from dk.serve.config import ServeConfig
from dk.serve.infer_route import INFER_LABEL, VERSIONED_INFER_LABEL, InferFirstApp
from dk.serve.limits import scrub
from dk.serve.responses import CUT_OFF, error_reply, error_response
from dk.serve.worker import MODEL_VERSION, ModelInfo, Worker

log = logging.getLogger("dk.serve")

__all__ = ["MODEL_VERSION", "ModelInfo", "Worker", "create_app"]

_WITH_BODY = {"POST", "PUT", "PATCH"}
Handler = Callable[[Worker, Any], Awaitable[Any]]


def _wrap(worker: Worker, label: str, func: Handler) -> Callable[[Any], Awaitable[Any]]:
    """The route endpoint: errors to ``{"error": ...}`` with their status, and a metrics sample."""

    async def endpoint(request: Any) -> Any:
        start = time.perf_counter()
        worker.metrics.in_flight += 1
        try:
            response = await func(worker, request)
        except Exception as exc:
            response = error_response(*error_reply(exc, label))
        except asyncio.CancelledError:  # still running when the stop grace period ended
            response = error_response(*CUT_OFF)
            response.headers["connection"] = "close"
        finally:
            worker.metrics.in_flight -= 1
        unread = request.method in _WITH_BODY and not getattr(request.state, "body_read", False)
        if response.status_code >= 400 and unread:
            # The rest of an unread body would be taken for the next request: end the connection.
            response.headers["connection"] = "close"
        worker.metrics.observe(label, response.status_code, time.perf_counter() - start)
        return response

    return endpoint


def create_app(engine: Engine | Callable[[], Engine], config: ServeConfig, model: ModelInfo):
    """The ASGI app serving ``engine`` (or the engine a loader returns, loaded after start-up): the
    infer endpoints straight from ASGI (:mod:`dk.serve.infer_route`), the rest on Starlette."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    worker = Worker(config=config, model=model)
    if isinstance(engine, Engine):
        worker.start(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        loader = None if isinstance(engine, Engine) else asyncio.get_running_loop().create_task(_load(worker, engine))
        yield
        worker.status, worker.reason = "stopping", "the server is shutting down"
        if loader is not None:
            await asyncio.gather(loader, return_exceptions=True)
        if worker.runner is not None:
            await worker.runner.aclose()

    routes = [  # starlette tries them in order: infer first
        ("/v2/models/{name}/infer", "POST", handlers.infer),
        ("/v2/health/live", "GET", handlers.live), ("/v2/health/ready", "GET", handlers.ready),
        ("/v2", "GET", handlers.server_metadata), ("/v2/models/{name}", "GET", handlers.model_metadata),
        ("/v2/models/{name}/ready", "GET", handlers.model_ready),
        ("/v2/models/{name}/versions/{version}", "GET", handlers.model_metadata),
        ("/v2/models/{name}/versions/{version}/ready", "GET", handlers.model_ready),
        ("/v2/models/{name}/config", "GET", handlers.model_config),
        ("/v2/models/{name}/versions/{version}/config", "GET", handlers.model_config),
        ("/v2/repository/index", "POST", handlers.repository_index),
        ("/v2/models/{name}/versions/{version}/infer", "POST", handlers.infer),
        ("/inference", "POST", handlers.inference), ("/metrics", "GET", handlers.metrics),
    ]
    if config.allow_upload:
        routes.append(("/v2/repository/models/{name}/upload", "POST", handlers.upload))
        routes.append(("/v2/repository/models/{name}/load", "POST", handlers.load))
    not_found = _wrap(worker, "other", handlers.not_found)

    async def http_error(request: Any, exc: Exception) -> Any:
        if getattr(exc, "status_code", 404) == 404:
            return await not_found(request)
        response = await _wrap(worker, "other", handlers.method_not_allowed)(request)
        allowed = (getattr(exc, "headers", None) or {}).get("Allow")
        if allowed:  # RFC 9110: a 405 says which methods the endpoint takes
            response.headers["allow"] = allowed
        return response

    endpoints = {path: _wrap(worker, path, func) for path, _, func in routes}
    app = Starlette(
        routes=[Route(path, endpoints[path], methods=[method]) for path, method, _ in routes],
        exception_handlers={404: http_error, 405: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # "/v2/models/x/" is a JSON 404, not a redirect built from the Host header
    app.state.worker = worker
    return InferFirstApp(app, endpoints[INFER_LABEL], endpoints[VERSIONED_INFER_LABEL])


async def _load(worker: Worker, loader: Callable[[], Engine]) -> None:
    try:
        engine = await asyncio.get_running_loop().run_in_executor(None, loader)
    except Exception as exc:
        log.error("loading the engine failed: %s", exc)
        worker.status, worker.reason = "failed", f"loading failed: {scrub(str(exc))}"
        return
    if worker.status == "stopping":
        engine.close()
        return
    worker.start(engine)
