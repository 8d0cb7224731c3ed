"""QAT with nvidia-modelopt on the CPU: fake-quant, calibration, fine-tune hook, Q/DQ ONNX export;
the exported model is run with onnxruntime. The TensorRT build of it needs a GPU (engine tests)."""

from __future__ import annotations

import sys
import types

import onnx
import pytest

from dk.default_model import load_split
from dk.errors import DkError
from dk.testing.models import calibration_feeds
from dk_trt.qat import MIN_OPSET, export_qat_onnx, load_train_hook
from dk_trt.qdq import count_qdq, prepare_for_tensorrt

torch = pytest.importorskip("torch", reason="QAT needs torch")
pytest.importorskip("modelopt", reason="QAT needs nvidia-modelopt: pip install nvidia-modelopt")
ort = pytest.importorskip("onnxruntime", reason="runs the exported Q/DQ ONNX")
pytestmark = pytest.mark.filterwarnings("ignore:Cannot find transformers package")


@pytest.fixture(scope="module")
def qat_onnx(tmp_path_factory):
    from dk_torch.models import digits_net

    calls = []

    def fine_tune(model):
        calls.append(model.training)

    out = tmp_path_factory.mktemp("qat") / "digits_qat.onnx"
    report = export_qat_onnx(digits_net, [torch.zeros(1, 1, 8, 8)], calibration_feeds(), out,
                             input_names=["input"], output_names=["logits"],
                             dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset=11, train=fine_tune)
    return out, report, calls


def test_qat_exports_a_qdq_onnx_that_keeps_accuracy(qat_onnx):
    path, report, calls = qat_onnx
    assert report.library == "modelopt" and report.opset == MIN_OPSET  # opset 11 raised to 13
    assert report.calibration_batches == len(list(calibration_feeds()())) and report.fine_tuned and calls == [True]
    model = onnx.load(str(path))
    assert count_qdq(model) == report.qdq_nodes >= 8
    assert model.opset_import[0].version == MIN_OPSET
    x, y = load_split("eval")
    logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert (logits.argmax(1) == y).mean() >= 0.97


def test_qat_onnx_is_already_what_tensorrt_takes(qat_onnx):
    prepared, report = prepare_for_tensorrt(onnx.load(str(qat_onnx[0])))
    assert (report.symmetrized, report.folded_biases) == (0, 0)  # symmetric int8, float biases already
    assert report.qdq_nodes == qat_onnx[1].qdq_nodes


def test_train_hook_is_imported_from_module_and_function(monkeypatch):
    module = types.ModuleType("dk_test_train_hooks")
    module.fit = lambda model: None
    monkeypatch.setitem(sys.modules, "dk_test_train_hooks", module)
    assert load_train_hook("dk_test_train_hooks:fit") is module.fit
    assert load_train_hook(None) is None
    with pytest.raises(DkError, match="train=fit must be package.module:function"):
        load_train_hook("fit")
    with pytest.raises(DkError, match="train=dk_test_train_hooks:missing: cannot import it"):
        load_train_hook("dk_test_train_hooks:missing")


def test_empty_calibration_set_is_refused(tmp_path):
    from dk_torch.models import digits_net

    with pytest.raises(DkError, match="the calibration set is empty"):
        export_qat_onnx(digits_net, [torch.zeros(1, 1, 8, 8)], lambda: iter(()), tmp_path / "q.onnx",
                        input_names=["input"], output_names=["logits"])
