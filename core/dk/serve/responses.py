"""JSON responses that are always valid JSON (no bare NaN or Infinity) and ``{"error": ...}`` bodies."""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from dk.errors import DkError, InputError
from dk.serve.limits import HttpError, scrub

log = logging.getLogger("dk.serve")

NON_FINITE = "which JSON cannot carry"


#: One encoder for every response (``json.dumps`` with options makes a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(data: Any) -> bytes:
    """Compact JSON bytes; a NaN or Infinity anywhere is a 500 saying so, never an invalid document."""
    try:
        return _ENCODER.encode(data).encode()
    except ValueError:
        raise HttpError(500, f"the response holds NaN or Infinity, {NON_FINITE}") from None


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    from starlette.responses import Response

    return Response(dumps(data), status_code=status, headers=dict(headers or {}), media_type="application/json")


#: The answer to a request still running when the stop grace period ends (uvicorn cancels it).
CUT_OFF = (503, "the server stopped before this request was done (it ran past the stop grace period); send it again")


def error_response(status: int, message: str):
    return json_response({"error": scrub(message)}, status)


def error_reply(exc: Exception, label: str) -> tuple[int, str]:
    """(status, message) answering an exception a handler of endpoint ``label`` raised: its own
    status for an ``HttpError``, 400 for bad input or a client gone mid-body, 500 for the rest
    (never a traceback to the client; the log has it)."""
    from starlette.requests import ClientDisconnect

    if isinstance(exc, HttpError):
        return exc.status, exc.message
    if isinstance(exc, InputError):
        return 400, str(exc)
    if isinstance(exc, ClientDisconnect):
        return 400, "client disconnected before sending the whole body"
    if isinstance(exc, DkError):
        log.warning("%s: %s", label, exc)
        return 500, str(exc)
    log.exception("internal error on %s", label, exc_info=exc)
    return 500, f"internal error ({type(exc).__name__}); see the server log"
