"""JSON responses that are always valid JSON (no bare NaN or Infinity) and ``{"error": ...}`` bodies."""

from __future__ import annotations

import json
from typing import Any, Mapping

from dk.serve.limits import HttpError, scrub

NON_FINITE = "which JSON cannot carry"


def dumps(data: Any) -> bytes:
    """Compact JSON bytes; a NaN or Infinity anywhere is a 500 saying so, never an invalid document."""
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        raise HttpError(500, f"the response holds NaN or Infinity, {NON_FINITE}") from None


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    from starlette.responses import Response

    return Response(dumps(data), status_code=status, headers=dict(headers or {}), media_type="application/json")


def error_response(status: int, message: str):
    return json_response({"error": scrub(message)}, status)
