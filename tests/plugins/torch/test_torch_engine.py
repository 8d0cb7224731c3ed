"""The torch reference engine: runs the torch model behind a torch-plugin artifact."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dk import api
from dk.artifacts import Artifact
from dk.default_model import load_split
from dk.errors import DeviceError, DkError, InputError, ModelError
from dk.specs import ExportRequest, ModelSource
from dk.testing.tolerances import assert_outputs_close


def test_reference_engine_is_accurate_on_the_default_eval_split(export_default):
    x, y = load_split("eval")
    with api.load_engine("torch", export_default()) as engine:
        logits = engine.infer({"input": x})["logits"]

    assert logits.dtype == np.float32 and logits.shape == (len(y), 10)
    assert (logits.argmax(1) == y).mean() >= 0.97


def test_cached_default_reference_is_reused_for_compare(tmp_path):
    request = ExportRequest(source=ModelSource("default", "dk:digitsnet"), out_dir=tmp_path)
    api.export("torch", request)

    artifact = api.export("torch", request)
    with api.load_engine("torch", artifact) as engine:
        assert artifact.reused
        assert engine.describe()["name"] == "torch" and engine.device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_request_without_cuda_is_a_device_error(export_default, device):
    message = re.escape(f"CUDA is not available here (torch {torch.__version__} ")
    with pytest.raises(DeviceError, match=rf"^{message}(is built without CUDA|sees no GPU)"):
        api.load_engine("torch", export_default(), device=device)


def test_unknown_device_is_a_device_error(export_default):
    with pytest.raises(DeviceError, match=r"runs on cpu, cuda or cuda:N, not 'tpu'"):
        api.load_engine("torch", export_default(), device="tpu")


def test_fp16_on_cpu_is_refused(export_default):
    with pytest.raises(DkError, match=r"precision=fp16 in the torch engine needs --device cuda"):
        api.load_engine("torch", export_default(), options={"precision": "fp16"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_stays_close_to_fp32(export_default):
    x = load_split("eval")[0][:32]
    artifact = export_default()
    with (
        api.load_engine("torch", artifact) as fp32,
        api.load_engine("torch", artifact, device="cuda", options={"precision": "fp16"}) as fp16,
    ):
        expected, got = fp32.infer({"input": x})["logits"], fp16.infer({"input": x})["logits"]
    assert got.dtype == np.float32
    assert_outputs_close(got, expected, "fp16", what="the torch engine at fp16 on cuda")


def test_artifact_of_another_plugin_is_refused(export_default):
    artifact = export_default()
    foreign = Artifact(path=artifact.path, manifest={**artifact.manifest, "plugin": "ort"})

    with pytest.raises(
        ModelError, match=r"built by plugin 'ort'; .* \(open this one with --plugin ort\)"
    ):
        api.load_engine("torch", foreign)


def test_engine_refuses_an_artifact_whose_weights_changed(tmp_path, tiny_module, tiny_weights):
    model, weights = tiny_weights
    source = ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(weights))
    artifact = api.export(
        "torch", ExportRequest(source=source, out_dir=tmp_path, shapes={"input": (1, 3, 16, 16)})
    )
    torch.save({k: v + 1 for k, v in model.state_dict().items()}, weights)

    with pytest.raises(ModelError, match=r"changed since it was exported; re-export the artifact"):
        api.load_engine("torch", artifact)


def test_engine_checks_dtype_and_names_before_running(export_default):
    with api.load_engine("torch", export_default()) as engine:
        with pytest.raises(InputError, match=r"dtype float64, expected float32"):
            engine.infer({"input": np.zeros((1, 1, 8, 8))})
        with pytest.raises(InputError, match=r"missing input\(s\) 'input'; unknown input\(s\) 'x'"):
            engine.infer({"x": np.zeros((1, 1, 8, 8), np.float32)})


def test_engine_accepts_read_only_and_strided_arrays(export_default):
    x = load_split("eval")[0][:6]
    with api.load_engine("torch", export_default()) as engine:
        expected = engine.infer({"input": x[::2].copy()})["logits"]
        x.flags.writeable = False
        got = engine.infer({"input": x[::2]})["logits"]

    np.testing.assert_array_equal(got, expected)


def test_closed_engine_refuses_to_run(export_default):
    engine = api.load_engine("torch", export_default())
    engine.close()
    engine.close()

    with pytest.raises(DkError, match=r"the torch engine is closed"):
        engine.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})


def test_model_failure_inside_torch_is_one_model_error_line(export_default):
    artifact = export_default(dynamic_hw=True)  # the checker lets any H x W through
    with api.load_engine("torch", artifact) as engine:
        with pytest.raises(
            ModelError, match=r"^the torch model failed on input:\[1, 1, 16, 16\]: "
        ) as info:
            engine.infer({"input": np.zeros((1, 1, 16, 16), np.float32)})
    assert "\n" not in str(info.value)


def test_threads_option_sets_torch_cpu_threads(export_default):
    before = torch.get_num_threads()
    try:
        api.load_engine("torch", export_default(), options={"threads": "1"}).close()
        assert torch.get_num_threads() == 1
        with pytest.raises(DkError, match=r"option threads must be a positive integer, not '0'"):
            api.load_engine("torch", export_default(), options={"threads": "0"})
    finally:
        torch.set_num_threads(before)
