"""The lpdnn RemoteEngine against a dk serve of the same artifact: identical outputs, timings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dk import api
from dk.default_model import load_split
from dk.errors import InputError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest


@pytest.fixture
def remote(worker_url, tmp_path):
    artifact = api.export("lpdnn", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path,
                                                 options={"url": worker_url}))
    return artifact


@pytest.mark.parametrize("binary", ["1", "0"])
def test_remote_outputs_are_identical_to_the_local_engine(remote, ort_artifact, binary):
    x, _ = load_split("eval")
    with api.load_engine("ort", ort_artifact) as local, api.load_engine("lpdnn", remote, options={"binary": binary}) as eng:
        for start in (0, 64, 300):
            feeds = {"input": np.ascontiguousarray(x[start:start + 64])}
            got, want = eng.infer(feeds), local.infer(feeds)
            assert list(got) == ["logits"] and got["logits"].dtype == np.float32
            np.testing.assert_array_equal(got["logits"], want["logits"])
        timing = eng.timings()
    assert timing["calls"] == 3 and timing["p50_target_infer_ms"] > 0 and timing["p50_network_ms"] >= 0
    assert timing["p50_total_ms"] >= timing["p50_server_ms"] >= timing["p50_target_infer_ms"]


def test_export_records_the_worker_and_its_model(remote, worker_url):
    assert remote.format == "http-worker" and remote.name == "v1.0_digitsnet_default_8x8_fp32_http-worker"
    assert remote.manifest["extra"] == {"url": worker_url, "model": "digitsnet"}
    assert [s.to_json() for s in remote.inputs] == [{"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}]
    assert remote.model_meta["task"] == "classification" and remote.model_meta["labels"][3] == "3"


def test_wrong_inputs_fail_like_a_local_engine(remote, ort_artifact):
    bad = {"input": np.zeros((1, 1, 8, 7), np.float32)}
    with api.load_engine("ort", ort_artifact) as local, api.load_engine("lpdnn", remote) as eng:
        with pytest.raises(InputError) as remote_error:
            eng.infer(bad)
        with pytest.raises(InputError) as local_error:
            local.infer(bad)
    assert str(remote_error.value) == str(local_error.value)


def test_server_side_input_errors_come_back_as_input_errors(remote):
    with api.load_engine("lpdnn", remote) as eng:
        eng._check = lambda feeds: None  # let the worker judge the bad input
        with pytest.raises(InputError, match="the worker rejected the input: input 'input' has datatype 'FP64'"):
            eng.infer({"input": np.zeros((1, 1, 8, 8), np.float64)})


def test_inference_endpoint_with_the_real_model_matches_local(worker_url, ort_artifact):
    import http.client
    from urllib.parse import urlsplit

    from tests.core.test_serve_support import digit_png

    image, tensor = digit_png("PNG", index=5)
    parts = urlsplit(worker_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", "/inference", image)
    response = conn.getresponse()
    doc = json.loads(response.read())
    with api.load_engine("ort", ort_artifact) as local:
        logits = local.infer({"input": tensor})["logits"][0]
    assert response.status == 200
    assert doc["items"][0]["top_k"][0]["class"] == int(np.argmax(logits))
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert abs(doc["items"][0]["top_k"][0]["score"] - float(probs.max())) < 1e-5
