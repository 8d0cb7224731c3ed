"""Reading bodies: binary tensors land aligned in one buffer and are decoded without another copy."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from dk.serve.bodies import read_limited
from dk.serve.limits import HttpError
from dk.serve.tensors import decode_request
from tests.core.test_serve_support import LinearEngine


async def _chunks(parts):
    for part in parts:
        yield part


def _body(pad: int) -> tuple[bytes, bytes, np.ndarray]:
    x = np.random.default_rng(pad).random((2, 1, 8, 8), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "input", "shape": [2, 1, 8, 8], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}], "id": "x" * pad}).encode()
    return header, header + x.tobytes(), x


@pytest.mark.parametrize("pad", [0, 1, 2, 3])
def test_binary_tensors_are_aligned_views_of_the_one_body_buffer(pad):
    header, body, x = _body(pad)
    parts = [body[i:i + 100] for i in range(0, len(body), 100)]
    got = asyncio.run(read_limited(_chunks(parts), str(len(body)), 1 << 20, align_at=len(header)))
    assert bytes(got) == body
    decoded = decode_request(got, str(len(header)), LinearEngine().inputs, max_depth=64, max_bytes=1 << 20)
    array = decoded.inputs["input"]
    np.testing.assert_array_equal(array, x)
    assert array.ctypes.data % 64 == 0 and np.shares_memory(array, np.frombuffer(got, np.uint8))


def test_aligned_read_refuses_a_short_body():
    header, body, _ = _body(0)
    with pytest.raises(HttpError, match=f"request body ended after 10 of its {len(body)} declared bytes"):
        asyncio.run(read_limited(_chunks([body[:10]]), str(len(body)), 1 << 20, align_at=len(header)))
