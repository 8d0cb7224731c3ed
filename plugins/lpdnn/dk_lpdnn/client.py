"""A small Open Inference Protocol v2 client: keep-alive connections, timeouts, retries with
backoff for connection errors only, binary tensors, and clear errors for garbage answers."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

from dk.errors import InputError, ModelError, UsageError
from dk.serve.oip import DATATYPES, encode_tensor
from dk_lpdnn.errors import WorkerError

HEADER = "Inference-Header-Content-Length"
#: Errors after which the request is sent again (the worker was not reached or dropped the connection).
RETRYABLE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
             http.client.RemoteDisconnected)


class _HTTPConnection(http.client.HTTPConnection):
    """Sends small requests at once: without TCP_NODELAY, headers and body sent apart wait ~40 ms
    for a delayed ACK (Nagle's algorithm)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class WorkerClient:
    """Talks to one worker URL; one keep-alive connection per calling thread."""

    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.05):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"worker url {url!r} is not http://HOST:PORT")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []

    # -- transport --------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = _HTTPSConnection if self._scheme == "https" else _HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body); retries connection errors with exponential backoff."""
        for attempt in range(self.retries + 1):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=body, headers=dict(headers or {}))
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self._drop()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except TimeoutError:
                self._drop()
                raise WorkerError(f"the worker at {self.url} did not answer within {self.timeout:g} s; raise "
                                  "-o timeout=SECONDS or check the worker") from None
            except RETRYABLE as exc:
                self._drop()
                if attempt == self.retries:
                    raise WorkerError(f"cannot reach the worker at {self.url} after {attempt + 1} attempts "
                                      f"({type(exc).__name__}); is 'dk serve' running there?") from None
                time.sleep(self.backoff * (2 ** attempt))
            except (http.client.HTTPException, OSError) as exc:
                self._drop()
                raise WorkerError(f"the worker at {self.url} failed: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> Any:
        status, _, data = self.request("GET", path)
        doc = _json(data, self.url)
        if status != 200:
            raise _status_error(status, doc, self.url)
        return doc

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._local = threading.local()

    # -- protocol ---------------------------------------------------------------------------

    def model_name(self, model: str | None) -> str:
        """``model``, or the only model the worker serves (from ``GET /v2``)."""
        if model:
            return model
        models = self.get_json("/v2").get("models")
        if not isinstance(models, list) or len(models) != 1:
            raise UsageError(f"the worker at {self.url} does not name exactly one model; give -o model=NAME")
        return str(models[0])

    def metadata(self, model: str) -> dict[str, Any]:
        doc = self.get_json(f"/v2/models/{model}")
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
            raise WorkerError(f"the worker at {self.url} answered garbage model metadata (no 'inputs' list)")
        return doc

    def infer(self, model: str, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
              binary: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Outputs by name and the worker's own ``parameters`` (its timings)."""
        body, headers = encode_request(feeds, outputs, binary)
        status, answer_headers, data = self.request("POST", f"/v2/models/{model}/infer", body, headers)
        if status != 200:
            raise _status_error(status, _json(data, self.url, lenient=True), self.url)
        return decode_response(data, answer_headers.get(HEADER.lower()), self.url)


def encode_request(feeds: Mapping[str, np.ndarray], outputs: Sequence[str], binary: bool) -> tuple[bytes, dict]:
    inputs, blobs = [], []
    for name, array in feeds.items():
        entry, blob = encode_tensor(name, array, binary)
        inputs.append(entry)
        if blob is not None:
            blobs.append(blob)
    doc = {"inputs": inputs, "outputs": [{"name": o, "parameters": {"binary_data": binary}} for o in outputs]}
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not binary:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {"Content-Type": "application/octet-stream", HEADER: str(len(header))}


def decode_response(data: bytes, header_length: str | None, url: str) -> tuple[dict[str, np.ndarray], dict]:
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(data):
            raise WorkerError(f"the worker at {url} answered garbage: bad {HEADER} {header_length[:20]!r}")
        data, binary = data[: int(header_length)], data[int(header_length):]
    doc = _json(data, url)
    raw = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(raw, list):
        raise WorkerError(f"the worker at {url} answered garbage: no 'outputs' list")
    outputs, offset = {}, 0
    for entry in raw:
        try:
            dtype = np.dtype(DATATYPES[entry["datatype"]])
            shape = tuple(int(d) for d in entry["shape"])
            size = (entry.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                if size != int(np.prod(shape)) * dtype.itemsize or offset + size > len(binary):
                    raise ValueError("binary size does not match the shape")
                array = np.frombuffer(binary, dtype.newbyteorder("<"), int(np.prod(shape)), offset)
                array = array.astype(dtype).reshape(shape)
                offset += size
            else:
                array = np.array(entry["data"], dtype=dtype).reshape(shape)
            outputs[str(entry["name"])] = array
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WorkerError(f"the worker at {url} answered garbage: output is not an OIP v2 tensor ({exc})") from None
    params = doc.get("parameters")
    return outputs, params if isinstance(params, dict) else {}


def _json(data: bytes, url: str, lenient: bool = False) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        if lenient:
            return {"error": data[:200].decode("utf-8", "replace")}
        raise WorkerError(f"the worker at {url} answered garbage (not JSON): {data[:60]!r}") from None


def _status_error(status: int, doc: Any, url: str) -> Exception:
    message = doc.get("error", "") if isinstance(doc, dict) else ""
    message = str(message)[:300] or f"HTTP {status}"
    if status == 400:
        return InputError(f"the worker rejected the input: {message}")
    if status == 404:
        return ModelError(f"the worker at {url}: {message}")
    if status == 413:
        return InputError(f"the request is too large for the worker at {url}: {message}")
    if status == 503:
        return WorkerError(f"the worker at {url} is not ready: {message}")
    return WorkerError(f"the worker at {url} answered HTTP {status}: {message}")
