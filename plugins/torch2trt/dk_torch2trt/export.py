"""torch -> TensorRT through ``torch2trt.torch2trt``: the direct path (torch layers converted one
by one) or ``use_onnx`` (torch -> ONNX -> TensorRT), fp32/fp16, or int8 with a calibration set
(:mod:`dk_torch2trt.quantize`). Files follow the Bonseyes convention:
``v1.0_<model>_default_<HxW>_<prec>_dla_disabled[_with_onnx]_trt.pth`` and the same name with ``.engine``.

torch2trt facts (master 4e820ae31b4e35d59685935223b05b2e11d47b03, torch2trt/torch2trt.py): a failed
build is not None but ``TRTModule(engine=None)`` (``build_serialized_network`` returned None);
``module_trt.engine`` is then None.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import attrs

from dk.artifacts import Artifact, BuiltModel, artifact_name, build_artifact, input_hw
from dk.errors import DeviceError, ModelError, UsageError
from dk.specs import CalibrationData, ExportRequest, ModelSource

from dk_torch2trt.doctor import PLUGIN, require_usable
from dk_torch2trt.options import (
    EXPORT_OPTIONS, ConvertSettings, check_options, check_use_onnx, convert_settings, cuda_device,
)


def export_engine(request: ExportRequest) -> Artifact:
    check_options(request.options, EXPORT_OPTIONS, "export")
    if request.precision == "int8":
        raise UsageError("torch2trt int8 needs calibration data: use 'dk run quantize --plugin torch2trt'")
    if request.precision not in ("fp32", "fp16"):
        raise UsageError(f"precision {request.precision!r} is not one of fp32, fp16, int8")
    settings = convert_settings(request.precision, request.options)
    return convert(request.source, request.out_dir, dict(request.shapes), settings, request.force,
                   request.build_options(), None, request.device)


def convert(source: ModelSource, out_dir: Path, shapes: dict, settings: ConvertSettings, force: bool,
            build_options: dict[str, Any], calibration: CalibrationData | None, device: str = "cpu") -> Artifact:
    """Build (or reuse) the torch2trt artifact of ``source`` on CUDA ``device``."""
    from dk_torch.loading import plan_source

    check_use_onnx(settings)
    plan = plan_source(ExportRequest(source=source, shapes=shapes, options={}))
    require_usable()
    cuda = cuda_device(device)
    name = artifact_name(plan.name, input_hw(plan.inputs[0]) if plan.inputs else None, settings.precision,
                         version=str(plan.meta.get("version", "1.0")), suffix=settings.suffix,
                         source_tag=plan.info.tag)

    def build(folder: Path) -> BuiltModel:
        return build_module(folder, name, plan, settings, calibration, cuda)

    tools = {d: _version(d) for d in ("torch", "tensorrt", "torch2trt")}
    tools["gpu"] = _gpu_name(cuda)
    return build_artifact(plugin=PLUGIN, out_dir=out_dir, name=name, source=plan.info,
                          build_options={**build_options, "settings": attrs.asdict(settings), "device": cuda},
                          tool_versions=tools, model_meta=plan.meta, build=build, force=force)


def build_module(folder: Path, name: str, plan: Any, settings: ConvertSettings, calibration, cuda: str) -> BuiltModel:
    import tensorrt as trt
    import torch
    from torch2trt import torch2trt

    from dk.specs import TensorSpec
    from dk_torch.loading import load_module

    from dk_torch2trt.calibration import calibration_samples

    torch.cuda.set_device(cuda)  # TensorRT builds on the current device
    module = load_module(plan.source).to(cuda).eval()
    example = [torch.rand(s.shape, generator=torch.Generator().manual_seed(0)).to(cuda) for s in plan.inputs]
    kwargs: dict[str, Any] = dict(fp16_mode=settings.precision == "fp16", int8_mode=settings.precision == "int8",
                                  use_onnx=settings.use_onnx, log_level=trt.Logger.WARNING)
    if settings.dla_core is None:
        kwargs["max_batch_size"] = settings.max_batch_size
    else:  # static shapes: the example's (batch 1)
        kwargs.update(default_device_type=trt.DeviceType.DLA, dla_core=settings.dla_core, gpu_fallback=True)
    if calibration is not None:
        kwargs["int8_calib_dataset"] = calibration_samples(calibration, plan.inputs, cuda)
    with torch.no_grad():
        module_trt = torch2trt(module, example, **kwargs)
        reference = module(*example)
    if module_trt is None or getattr(module_trt, "engine", None) is None:
        raise ModelError(f"TensorRT could not build an engine from {plan.info.location} through torch2trt "
                         f"({settings.precision}); the TensorRT log above says why")
    torch.save(module_trt.state_dict(), folder / f"{name}.pth")
    (folder / f"{name}.engine").write_bytes(bytes(module_trt.engine.serialize()))
    top = 1 if settings.dla_core is not None else settings.max_batch_size
    inputs = [TensorSpec(s.name, ("batch", *s.shape[1:]), "float32", (1, *s.shape[1:]), (top, *s.shape[1:]))
              for s in plan.inputs]
    refs = reference if isinstance(reference, (tuple, list)) else [reference]
    outputs = [TensorSpec(n, ("batch", *r.shape[1:]), "float32") for n, r in zip(plan.output_names, refs)]
    return BuiltModel([f"{name}.pth", f"{name}.engine"], "torch2trt", settings.precision, inputs, outputs,
                      {"use_onnx": settings.use_onnx, "dla_core": settings.dla_core, "device": cuda})


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _gpu_name(cuda: str) -> str:
    import torch

    if not torch.cuda.is_available():
        raise DeviceError("torch2trt needs CUDA, and torch sees no CUDA device here")
    return torch.cuda.get_device_name(cuda)
