"""Torch model sources: module:factory with weights, TorchScript and torch.export files."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from dk import api
from dk.errors import MissingDependency, ModelError
from dk.sources import source_tag
from dk.specs import ExportRequest, ModelSource
from dk.testing.tolerances import assert_outputs_close

ort = pytest.importorskip(
    "onnxruntime", reason="ONNX parity checks need onnxruntime: pip install onnxruntime"
)

SHAPES = {"input": (1, 3, 16, 16)}


def export(tmp_path, source, **overrides):
    overrides.setdefault("shapes", SHAPES)
    return api.export("torch", ExportRequest(source=source, out_dir=tmp_path / "out", **overrides))


def run_onnx(artifact, x):
    session = ort.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
    return session.run(None, {artifact.inputs[0].name: x})[0]


def torch_out(model, x):
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def images(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, 16, 16)).astype(np.float32)


def test_callable_source_with_weights_exports_the_weighted_model(
    tmp_path, tiny_module, tiny_weights
):
    model, weights = tiny_weights
    source = ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(weights))

    artifact = export(
        tmp_path, source, options={"task": "classification", "output_names": "scores"}
    )

    assert artifact.path.name == f"v1.0_make-tiny-{source_tag(source)}_default_16x16_fp32"
    assert artifact.model_meta == {"name": "make-tiny", "task": "classification"}
    assert [s.name for s in artifact.outputs] == ["scores"]
    x = images(3)
    assert_outputs_close(run_onnx(artifact, x), torch_out(model, x), what="ONNX Runtime on the export")
    with api.load_engine("torch", artifact) as engine:
        np.testing.assert_allclose(
            engine.infer({"input": x})["scores"], torch_out(model, x), atol=1e-6, rtol=0
        )


def test_callable_source_hash_covers_factory_and_weights(tmp_path, tiny_module, tiny_weights):
    _, weights = tiny_weights
    without = export(tmp_path / "a", ModelSource("torch-callable", f"{tiny_module}:make_tiny"))
    with_weights = export(
        tmp_path / "b", ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(weights))
    )

    assert without.manifest["source"]["sha256"] != with_weights.manifest["source"]["sha256"]
    assert with_weights.manifest["source"]["location"] == f"{tiny_module}:make_tiny"


def test_checkpoint_dict_with_state_dict_key_is_accepted(tmp_path, tiny_module, tiny_weights):
    model, _ = tiny_weights
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, checkpoint)

    artifact = export(
        tmp_path, ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(checkpoint))
    )

    x = images(2)
    assert_outputs_close(run_onnx(artifact, x), torch_out(model, x), what="ONNX Runtime on the export")


def test_weights_holding_a_pickled_object_are_refused(tmp_path, tiny_module):
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"weights": argparse.Namespace(x=1)}, unsafe)

    with pytest.raises(
        ModelError, match=r"not weights_only-safe; only weights_only-safe files are accepted"
    ):
        export(tmp_path, ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(unsafe)))
    assert not (tmp_path / "out").exists()  # a failed build leaves no folder behind


def test_weights_with_other_keys_name_missing_and_unexpected_keys(tmp_path, tiny_module):
    wrong = tmp_path / "wrong.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, wrong)

    with pytest.raises(
        ModelError,
        match=r"missing keys conv\.bias, conv\.weight, fc\.bias \(\+1 more\); "
        r"unexpected keys encoder\.weight$",
    ):
        export(tmp_path, ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(wrong)))


def test_safetensors_weights_without_the_package_name_the_install(tmp_path, tiny_module):
    try:
        import safetensors  # noqa: F401

        pytest.skip("safetensors is installed")
    except ImportError:
        pass
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(b"\0" * 16)

    with pytest.raises(MissingDependency, match=r"needs safetensors: pip install safetensors"):
        export(tmp_path, ModelSource("torch-callable", f"{tiny_module}:make_tiny", str(weights)))


def test_callable_without_shapes_asks_for_them(tmp_path, tiny_module):
    with pytest.raises(ModelError, match=r"needs its input shape: pass --shapes input:1x3x224x224"):
        export(tmp_path, ModelSource("torch-callable", f"{tiny_module}:make_tiny"), shapes={})


def test_factory_that_returns_no_module_is_refused(tmp_path, tiny_module):
    with pytest.raises(
        ModelError,
        match=rf"{tiny_module}:not_a_model\(\) returned int, expected a torch\.nn\.Module",
    ):
        export(tmp_path, ModelSource("torch-callable", f"{tiny_module}:not_a_model"))


def test_unimportable_factory_module_is_a_model_error(tmp_path):
    with pytest.raises(
        ModelError,
        match=r"cannot find module 'no_such_module_dk' for --model no_such_module_dk:make; "
        r"is it on PYTHONPATH\?",
    ):
        export(tmp_path, ModelSource("torch-callable", "no_such_module_dk:make"))


def test_torchscript_source_exports_and_runs_in_the_engine(tmp_path, tiny_module):
    model = __import__(tiny_module).make_tiny().eval()
    path = tmp_path / "tiny.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 16, 16)).save(str(path))

    artifact = export(tmp_path, ModelSource("torchscript", str(path)))

    assert artifact.path.name == f"v1.0_tiny-{source_tag(ModelSource('torchscript', str(path)))}_default_16x16_fp32"
    x = images(4)
    assert_outputs_close(run_onnx(artifact, x), torch_out(model, x), what="ONNX Runtime on the export")
    with api.load_engine("torch", artifact) as engine:
        np.testing.assert_allclose(
            engine.infer({"input": x})["output"], torch_out(model, x), atol=1e-6, rtol=0
        )


def test_state_dict_given_as_torchscript_says_to_use_a_factory(tmp_path, tiny_weights):
    _, weights = tiny_weights
    with pytest.raises(
        ModelError, match=r"cannot load .* as TorchScript .*--model module\.path:factory --weights"
    ):
        export(tmp_path, ModelSource("torchscript", str(weights)))


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_corrupt_torch_file_is_one_dk_error_line_and_leaves_no_folder(tmp_path, suffix):
    from tests.conftest import run_dk

    (tmp_path / f"bad{suffix}").write_text("hello\n")

    proc = run_dk("run", "export", "--plugin", "ort", "--model", f"bad{suffix}",
                  "--shapes", "input:1x1x8x8", cwd=tmp_path)

    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load {tmp_path / f'bad{suffix}'}")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dk-artifacts").exists()


def test_torch_export_program_with_dynamic_batch_exports(tmp_path, tiny_module):
    model = __import__(tiny_module).make_tiny().eval()
    program = torch.export.export(
        model,
        (torch.zeros(2, 3, 16, 16),),
        dynamic_shapes={"x": {0: torch.export.Dim("batch", max=64)}},
    )
    path = tmp_path / "tiny.pt2"
    torch.export.save(program, str(path))

    artifact = export(
        tmp_path, ModelSource("torch-export", str(path)), shapes={"input": (2, 3, 16, 16)}
    )

    assert artifact.inputs[0].shape == ("batch", 3, 16, 16)
    for batch in (1, 3):
        x = images(batch)
        assert_outputs_close(run_onnx(artifact, x), torch_out(model, x), what="ONNX Runtime")
    with api.load_engine("torch", artifact) as engine:
        np.testing.assert_allclose(
            engine.infer({"input": images(3)})["output"],
            torch_out(model, images(3)),
            atol=1e-6,
            rtol=0,
        )


def test_static_torch_export_program_refuses_a_dynamic_batch(tmp_path, tiny_module):
    model = __import__(tiny_module).make_tiny().eval()
    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 16, 16),)), str(path))
    source = ModelSource("torch-export", str(path))

    with pytest.raises(
        ModelError,
        match=r"saved by torch\.export with a static batch axis \(input 'input' axis 0 = 1\)",
    ):
        export(tmp_path, source)
    artifact = export(tmp_path, source, dynamic_batch=False)
    assert artifact.inputs[0].shape == (1, 3, 16, 16)


TWO_INPUT_MODULE = '''
import torch
from torch import nn


class TwoNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, a, b):
        return self.fc(a) + b[:, :3]


def make():
    torch.manual_seed(0)
    return TwoNet()
'''


def test_compare_of_a_two_input_module_feeds_both_inputs(tmp_path):
    import json

    from tests.conftest import run_dk

    (tmp_path / "twonet.py").write_text(TWO_INPUT_MODULE)

    proc = run_dk("compare", "--plugins", "torch,ort", "--model", "twonet:make", "--shapes", "a:1x4,b:1x4",
                  "--json", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["data"], report["samples"]) == ("random(seed=0)", 8)
    assert [(r["engine"], r["output"], r["passed"]) for r in report["rows"]] == [("ort:fp32", "output", True)]
