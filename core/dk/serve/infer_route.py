"""The OIP infer endpoints served straight from ASGI, past Starlette's middleware, router and
``Request``; every other endpoint goes to the Starlette app.

The handler (``handlers.infer``), its error mapping and metrics (``app._wrap``) are the same ones
Starlette would call: only the plumbing around them is shorter. On the 2-core development VM that
plumbing cost about 0.27 ms of event-loop CPU per ResNet-18-sized request (a bare Starlette route vs
the same code as a plain ASGI callable on the same uvicorn, interleaved; docs/serving.md).
"""

from __future__ import annotations

import re
import types
from typing import Any, AsyncIterator, Awaitable, Callable

#: ``/v2/models/{name}/infer`` and ``/v2/models/{name}/versions/{version}/infer``.
INFER_PATH = re.compile(r"/v2/models/([^/]+)/(?:versions/([^/]+)/)?infer")
INFER_LABEL, VERSIONED_INFER_LABEL = "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"

Endpoint = Callable[[Any], Awaitable[Any]]


class AsgiRequest:
    """What the infer handler and ``app._wrap`` use of a Starlette ``Request``, read from the ASGI
    scope: ``method``, ``path_params``, ``headers`` (lower-case names; the first of repeated ones,
    as Starlette's ``get``), ``state``, ``scope`` and ``stream()``."""

    __slots__ = ("scope", "method", "path_params", "headers", "state", "_receive")

    def __init__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                 path_params: dict[str, str]):
        self.scope, self._receive = scope, receive
        self.method: str = scope["method"]
        self.path_params = path_params
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        self.state = types.SimpleNamespace()

    async def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive; ``ClientDisconnect`` (Starlette's) if the client leaves."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                from starlette.requests import ClientDisconnect

                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


class InferFirstApp:
    """The ASGI app ``dk serve`` runs: POSTs to an infer path go to ``infer`` and ``versioned_infer``
    (endpoints made by ``app._wrap``), everything else (other methods on those paths included) to
    ``app``, the Starlette application. ``state`` is the Starlette app's."""

    def __init__(self, app: Any, infer: Endpoint, versioned_infer: Endpoint):
        self.app, self.state = app, app.state
        self._infer, self._versioned_infer = infer, versioned_infer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = INFER_PATH.fullmatch(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        name, version = match.groups()
        if version is None:
            response = await self._infer(AsgiRequest(scope, receive, {"name": name}))
        else:
            response = await self._versioned_infer(AsgiRequest(scope, receive, {"name": name, "version": version}))
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
