"""Quantization-aware training: fake-quant modules, calibration, the user's fine-tune hook, and a
Q/DQ ONNX export (opset >= 13) that TensorRT builds as an explicit int8 engine.

Uses NVIDIA's ``nvidia-modelopt`` (``modelopt.torch.quantization``) or its predecessor
``pytorch-quantization``, whichever is installed; torch and the library are imported here only.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from dk.errors import DkError, MissingDependency, ModelError
from dk.specs import CalibrationData

INSTALL_HINT = "pip install nvidia-modelopt (or NVIDIA's pytorch-quantization)"
MIN_OPSET = 13


@attrs.frozen
class QatReport:
    library: str
    calibration_batches: int
    fine_tuned: bool
    qdq_nodes: int
    opset: int


def qat_library() -> str:
    """``modelopt`` or ``pytorch_quantization``, whichever is importable (modelopt first)."""
    if importlib.util.find_spec("modelopt") is not None:
        return "modelopt"
    if importlib.util.find_spec("pytorch_quantization") is not None:
        return "pytorch_quantization"
    raise MissingDependency(f"QAT needs NVIDIA's quantization toolkit: {INSTALL_HINT}")


def load_train_hook(spec: str | None) -> Callable[[Any], Any] | None:
    """``package.module:function`` -> the function, called as ``function(model)`` to fine-tune."""
    if not spec:
        return None
    module_name, sep, func = spec.partition(":")
    if not sep or not module_name or not func:
        raise DkError(f"option train={spec} must be package.module:function")
    try:
        hook = getattr(importlib.import_module(module_name), func)
    except (ImportError, AttributeError) as exc:
        raise DkError(f"option train={spec}: cannot import it ({exc})") from None
    if not callable(hook):
        raise DkError(f"option train={spec} is not a function")
    return hook


def export_qat_onnx(
    make_module: Callable[[], Any],
    example: Sequence[Any],
    calibration: CalibrationData,
    out: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = 17,
    train: Callable[[Any], Any] | None = None,
    library: str | None = None,
) -> QatReport:
    """Insert fake-quant modules into ``make_module()``, calibrate them on ``calibration``, call
    ``train(model)`` if given, and write the Q/DQ ONNX to ``out``."""
    import onnx
    import torch

    from dk_trt.qdq import count_qdq

    library = library or qat_library()
    opset = max(opset, MIN_OPSET)
    batches = 0

    def forward_loop(model: Any) -> None:
        nonlocal batches
        with torch.no_grad():
            for feed in calibration():
                model(*(torch.as_tensor(feed[n]) for n in input_names))
                batches += 1

    if library == "modelopt":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optional integrations it cannot find (transformers, ...)
            import modelopt.torch.quantization as mtq

        model = mtq.quantize(make_module(), mtq.INT8_DEFAULT_CFG, forward_loop)
        enable_export = None
    else:
        model, enable_export = _pytorch_quantization(make_module, forward_loop)
    if batches == 0:
        raise DkError("the calibration set is empty; QAT calibrates its fake-quant ranges first")
    if train is not None:
        model.train()
        train(model)
    model.eval()
    if enable_export is not None:
        enable_export()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings from the fake-quant modules
            torch.onnx.export(model, tuple(example), str(out), dynamo=False, opset_version=opset,
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic_axes)
    except Exception as exc:
        raise ModelError(f"exporting the QAT model to ONNX failed: {' '.join(str(exc).split())[:300]}") from exc
    return QatReport(library, batches, train is not None, count_qdq(onnx.load(str(out))), opset)


def _pytorch_quantization(make_module: Callable[[], Any], forward_loop: Callable[[Any], None]):
    """pytorch-quantization: modules built inside quant_modules.initialize() get fake-quant;
    calibrate max ranges, then export with ONNX QuantizeLinear/DequantizeLinear."""
    from pytorch_quantization import nn as quant_nn
    from pytorch_quantization import quant_modules

    quant_modules.initialize()
    try:
        model = make_module()
    finally:
        quant_modules.deactivate()
    quantizers = [m for m in model.modules() if isinstance(m, quant_nn.TensorQuantizer)]
    for q in quantizers:
        q.disable_quant()
        q.enable_calib()
    forward_loop(model)
    for q in quantizers:
        q.load_calib_amax()
        q.disable_calib()
        q.enable_quant()

    def enable_export() -> None:
        quant_nn.TensorQuantizer.use_fb_fake_quant = True

    return model, enable_export
