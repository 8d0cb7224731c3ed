"""Open Inference Protocol v2 tensors: JSON (flat or nested ``data``) and the binary extension.

The binary extension (Triton's): the body starts with a JSON header of
``Inference-Header-Content-Length`` bytes, followed by the raw little-endian bytes of every input
whose ``parameters.binary_data_size`` is set, in order.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from dk.serve.jsonpieces import MARKER, cut_data_arrays, parse_numbers
from dk.serve.limits import HttpError, byte_count, check_depth, check_shape, element_count
from dk.serve.oip import DATATYPES, NUMPY_TO_DATATYPE, NonFiniteError, encode_tensor
from dk.serve.responses import dumps
from dk.specs import TensorSpec

BINARY_HEADER = "inference-header-content-length"
BINARY_HEADER_BYTES = BINARY_HEADER.encode()  # as in an ASGI scope's headers
#: OIP datatype -> (numpy dtype, its little-endian wire dtype), made once.
_DTYPES = {k: (np.dtype(v), np.dtype(v).newbyteorder("<")) for k, v in DATATYPES.items()}
MAX_TENSORS = 64
_JSON_KINDS = {dict: "an object", list: "an array", bool: "true/false", int: "a number", float: "a number"}
#: JSON bodies larger than this have their ``data`` arrays parsed in pieces (the GIL free between).
PIECEWISE_BYTES = 1 << 20


@attrs.define
class InferRequest:
    """A decoded ``/v2/models/{name}/infer`` request."""

    id: str | None
    inputs: dict[str, np.ndarray]
    binary_outputs: bool  # the request's binary_data_output: the default for every output
    requested_outputs: list[str] | None
    binary_overrides: dict[str, bool] = attrs.field(factory=dict)  # an output's own binary_data
    classification: dict[str, int] = attrs.field(factory=dict)  # output -> top-k of the classification extension


@functools.lru_cache(maxsize=None)
def datatype_of(dtype: str) -> str:
    return NUMPY_TO_DATATYPE.get(np.dtype(dtype).name, "BYTES")


def oip_shape(spec: TensorSpec) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in spec.shape]


def _non_finite(literal: str) -> Any:
    raise HttpError(400, f"JSON holds {literal}, which is not a JSON number; send finite numbers, or binary tensors "
                         "for NaN and Infinity")


def parse_json(body: bytes | bytearray, max_depth: int, arrays: list | None = None) -> Any:
    """The JSON document of ``body``: linear-time depth check first, then the C parser; NaN and
    Infinity literals are refused (400), as they are not JSON. With ``arrays`` (a list to fill) a
    body over ``PIECEWISE_BYTES`` has its ``data`` arrays cut out for :mod:`dk.serve.jsonpieces`."""
    check_depth(body, max_depth)
    if arrays is not None and len(body) > PIECEWISE_BYTES:
        body, cut = cut_data_arrays(body)
        arrays.extend(cut)
    try:
        return json.loads(body, parse_constant=_non_finite)
    except RecursionError:
        raise HttpError(400, f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}") from None


def decode_request(body: bytes | bytearray | memoryview, header_length: str | None, specs: Sequence[TensorSpec],
                   *, max_depth: int, max_bytes: int) -> InferRequest:
    """Validate and decode an infer request against the model's input specs (400 on any problem).

    Binary tensors are views of ``body`` (``np.frombuffer``, no copy unless misaligned); only the
    JSON header is parsed, never the binary part.
    """
    binary = memoryview(b"")
    if header_length is not None:
        split = byte_count(header_length)
        if split is None or split > len(body):
            raise HttpError(400, f"Inference-Header-Content-Length {header_length[:40]!r} is not a length "
                                 f"within the {len(body)}-byte body")
        body, binary = bytes(body[:split]), memoryview(body)[split:]
    elif isinstance(body, memoryview):
        body = bytes(body)
    arrays: list[memoryview] = []
    doc = parse_json(body, max_depth, arrays)
    if not isinstance(doc, dict):
        raise HttpError(400, "request must be a JSON object with an 'inputs' list")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise HttpError(400, "request needs a non-empty 'inputs' list")
    if len(raw_inputs) > MAX_TENSORS:
        raise HttpError(400, f"request has {len(raw_inputs)} inputs, more than {MAX_TENSORS}")
    by_name = {s.name: s for s in specs}
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for raw in raw_inputs:
        array, used = _decode_input(raw, by_name, binary, offset, max_bytes, arrays)
        offset += used
        if raw["name"] in inputs:
            raise HttpError(400, f"input {raw['name']!r} is given twice")
        inputs[raw["name"]] = array
    if offset != len(binary):
        raise HttpError(400, f"binary data is {len(binary)} bytes but the inputs declare {offset}")
    missing = [name for name in by_name if name not in inputs]
    if missing:
        raise HttpError(400, f"missing input(s) {', '.join(map(repr, missing))}; the model expects "
                             f"{', '.join(map(repr, by_name))}")
    params = doc.get("parameters") if isinstance(doc.get("parameters"), dict) else {}
    outputs = doc.get("outputs")
    requested, binary_out, overrides, classes = _requested_outputs(outputs, params)
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise HttpError(400, f"'id' must be a string (it is echoed in the response), not {_JSON_KINDS[type(request_id)]}")
    return InferRequest(request_id, inputs, binary_out, requested, overrides, classes)


def _decode_input(raw: Any, by_name: Mapping[str, TensorSpec], binary: memoryview, offset: int,
                  max_bytes: int, arrays: Sequence[memoryview] = ()) -> tuple[np.ndarray, int]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise HttpError(400, "each input must be an object with 'name', 'shape', 'datatype' and 'data'")
    name = raw["name"]
    spec = by_name.get(name)
    if spec is None:
        raise HttpError(400, f"unknown input {name[:64]!r}; the model expects {', '.join(map(repr, by_name))}")
    datatype = raw.get("datatype")
    expected = datatype_of(spec.dtype)
    if datatype is None:
        raise HttpError(400, f"input {name!r} has no 'datatype'; the model expects {expected}")
    if datatype != expected:
        raise HttpError(400, f"input {name!r} has datatype {str(datatype)[:16]!r}, the model expects {expected}")
    dtype, wire = _DTYPES[datatype]
    shape = check_shape(name, raw.get("shape"), dtype.itemsize, max_bytes)
    _check_against_spec(name, shape, spec)
    count = element_count(shape)
    params = raw.get("parameters")
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if type(size) is not int or size != count * dtype.itemsize:
            raise HttpError(400, f"input {name!r}: binary_data_size {str(size)[:20]} does not match shape "
                                 f"{list(shape)} of {datatype} ({count * dtype.itemsize} bytes)")
        if offset + size > len(binary):
            raise HttpError(400, f"input {name!r}: binary data ends after {len(binary) - offset} of {size} bytes")
        array = np.frombuffer(binary, dtype=wire, count=count, offset=offset)
        array = array.astype(dtype, copy=False).reshape(shape)
        return (array if array.flags.aligned else array.copy()), size
    if "data" not in raw:
        raise HttpError(400, f"input {name!r} has no 'data' (and no binary_data_size)")
    data = raw["data"]
    if isinstance(data, dict) and isinstance(data.get(MARKER), int) and 0 <= data[MARKER] < len(arrays):
        data = parse_numbers(arrays[data[MARKER]], name, datatype, _non_finite)  # flat; the count is checked below
    elif not isinstance(data, list):
        data = [data]
    try:
        parsed = np.asarray(data)
        if parsed.dtype.kind not in "biuf":
            raise TypeError(parsed.dtype)
    except (ValueError, TypeError, OverflowError):
        raise HttpError(400, f"input {name!r}: data is not a (nested) list of {datatype} numbers") from None
    array = _as_datatype(parsed, dtype, name, datatype)
    if array.size != count:
        raise HttpError(400, f"input {name!r}: data holds {array.size} values, shape {list(shape)} needs {count}")
    return array.reshape(shape), 0


def _as_datatype(parsed: np.ndarray, dtype: np.dtype, name: str, datatype: str) -> np.ndarray:
    """JSON values as the input's dtype, or 400 where the cast would change them: BOOL takes true
    and false only, integers whole numbers within their range, floats finite numbers that stay
    finite (1e39 is Infinity in FP32). A cast that wraps or truncates would feed the model values
    the client never sent."""
    kind, problem = parsed.dtype.kind, None
    if kind == "b" and dtype.kind != "b":
        problem = f"data holds true/false; {datatype} takes numbers"
    elif dtype.kind == "b" and kind != "b":
        problem = "data holds numbers; BOOL takes true and false"
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        if kind == "f" and not np.array_equal(parsed, np.trunc(parsed)):
            problem = f"data holds a number with a fraction; {datatype} takes whole numbers"
        elif parsed.size and (parsed.min() < info.min or parsed.max() > info.max):
            problem = f"data holds a number outside {datatype}'s range {info.min} to {info.max}"
    with np.errstate(over="ignore"):  # an overflow to Infinity is refused just below
        array = parsed.astype(dtype, copy=False) if problem is None else parsed
    if problem is None and dtype.kind == "f" and not np.isfinite(array).all():
        problem = (f"data holds a number out of {datatype}'s range (such as 1e999), which would be Infinity; "
                   "send finite numbers, or a binary tensor for NaN and Infinity")
    if problem is not None:
        raise HttpError(400, f"input {name!r}: {problem}")
    return array


def _check_against_spec(name: str, shape: tuple[int, ...], spec: TensorSpec) -> None:
    if len(shape) != len(spec.shape) or any(isinstance(w, int) and w != g for g, w in zip(shape, spec.shape)):
        raise HttpError(400, f"input {name!r} has shape {list(shape)}, the model expects "
                             f"{[d if isinstance(d, int) else -1 for d in spec.shape]}")


def _requested_outputs(outputs: Any, params: Mapping[str, Any]) \
        -> tuple[list[str] | None, bool, dict[str, bool], dict[str, int]]:
    """Requested output names, the request's default ``binary_data_output``, each output's own
    ``binary_data`` where it says (Triton's binary extension: the output's setting wins), and the
    top-k of outputs that ask for the classification extension (``parameters.classification``)."""
    binary = params.get("binary_data_output", False)
    if not isinstance(binary, bool):
        raise HttpError(400, f"parameters.binary_data_output must be true or false, not {str(binary)[:20]}")
    if "classification" in params:
        raise HttpError(400, "'classification' is a parameter of an output, not of the request: "
                             "put it in outputs[i].parameters")
    if outputs is None or outputs == []:  # absent or empty: every output (as Triton)
        return None, binary, {}, {}
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise HttpError(400, "'outputs' must be a list of objects with a 'name'")
    overrides, classes = {}, {}
    for o in outputs:
        p = o.get("parameters")
        if isinstance(p, dict) and "binary_data" in p:
            if not isinstance(p["binary_data"], bool):
                raise HttpError(400, f"output {o['name'][:64]!r}: binary_data must be true or false, "
                                     f"not {str(p['binary_data'])[:20]}")
            overrides[o["name"]] = p["binary_data"]
        if isinstance(p, dict) and "classification" in p:
            k = p["classification"]
            if type(k) is not int or k < 1:
                raise HttpError(400, f"output {o['name'][:64]!r}: classification must be a positive integer "
                                     f"(the top k classes), not {str(k)[:20]}")
            classes[o["name"]] = k
    return [o["name"] for o in outputs], binary, overrides, classes


def encode_response(model: str, version: str, request_id: str | None, outputs: Mapping[str, np.ndarray],
                    binary: bool, parameters: Mapping[str, Any],
                    overrides: Mapping[str, bool] | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and extra headers of an infer response (binary outputs follow the JSON header);
    ``overrides`` sets binary or JSON for single outputs."""
    entries = []
    blobs = []
    for name, value in outputs.items():
        as_binary = (overrides or {}).get(name, binary)
        try:
            entry, blob = encode_tensor(name, value, as_binary)
        except NonFiniteError:
            raise HttpError(500, f"output {name[:64]!r} holds NaN or Infinity, which JSON cannot carry; ask for it "
                                 "as binary (parameters.binary_data_output, or the output's binary_data)") from None
        entries.append(entry)
        if blob is not None:
            blobs.append(blob)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": entries,
                           "parameters": dict(parameters)}
    if request_id is not None:
        doc["id"] = request_id
    header = dumps(doc)
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream",
                                      BINARY_HEADER: str(len(header))}
