"""torch -> TensorRT through ``torch2trt.torch2trt``: the direct path (torch layers converted one
by one) or ``use_onnx`` (torch -> ONNX -> TensorRT), fp32/fp16, or int8 with a calibration set.
Files follow the Bonseyes convention: ``v1.0_<model>_default_<HxW>_<prec>_dla_disabled[_with_onnx]_trt.pth``
and the same name with ``.engine``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any, Mapping

import attrs

from dk.artifacts import Artifact, BuiltModel, artifact_name, build_artifact, input_hw
from dk.errors import DkError, MissingDependency, UsageError
from dk.specs import CalibrationData, ExportRequest, ModelSource, PluginInfo, QuantizeRequest

from dk_trt.jetson import dla_refusal
from dk_trt.options import check_dla, check_known, parse_dla_core, parse_flag, parse_workspace

PLUGIN = "torch2trt"
INSTALL_HINT = (
    "torch2trt is not on PyPI: git clone https://github.com/NVIDIA-AI-IOT/torch2trt && pip install ./torch2trt "
    "(needs torch with CUDA and TensorRT: pip install tensorrt)"
)
EXPORT_OPTIONS = {
    "use_onnx": "1: torch2trt goes through ONNX (files named ..._with_onnx_trt.pth)",
    "workspace": "builder workspace limit in MiB (or with a K/M/G suffix)",
    "dla_core": "build for this Jetson DLA core (fp16/int8), with GPU fallback",
    "max_batch_size": "largest batch the engine accepts (default 64)",
}
QUANTIZE_OPTIONS = {**EXPORT_OPTIONS, "shapes": "example input shapes of a torch model other than the default"}
DEFAULT_MAX_BATCH = 64


@attrs.frozen
class ConvertSettings:
    precision: str
    use_onnx: bool
    workspace_bytes: int | None
    dla_core: int | None
    max_batch_size: int

    @property
    def suffix(self) -> str:
        dla = "dla_disabled" if self.dla_core is None else "dla_enabled"
        return f"{dla}_with_onnx_trt" if self.use_onnx else f"{dla}_trt"


def missing_reason() -> str | None:
    missing = [m for m in ("torch", "tensorrt", "torch2trt") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)}: {INSTALL_HINT}" if missing else None


def describe(probe: bool) -> PluginInfo:
    info = PluginInfo(name=PLUGIN, kind="engine", formats_in=["torch"], formats_out=["torch2trt"],
                      precisions=["fp32", "fp16", "int8"], devices=["cuda", "cuda:N"])
    for dist in ("torch", "torch2trt", "tensorrt"):
        try:
            info.versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    reason = missing_reason()
    if reason:
        info.available, info.status, info.reason = False, "missing-dependency", reason
    elif probe:
        import torch

        if not torch.cuda.is_available():
            info.available, info.status = False, "no-device"
            info.reason = "torch2trt needs CUDA, and torch sees no CUDA device here"
        else:
            info.details = {"gpu": torch.cuda.get_device_name(0)}
    return info


def convert_settings(precision: str, options: Mapping[str, str]) -> ConvertSettings:
    """Parse and check options (no heavy import)."""
    max_batch = options.get("max_batch_size", str(DEFAULT_MAX_BATCH)).strip()
    if not max_batch.isdigit() or int(max_batch) < 1:
        raise UsageError(f"option max_batch_size={max_batch} must be a positive whole number")
    dla_core = parse_dla_core(options.get("dla_core"))
    check_dla(dla_core, precision, dla_refusal(core=dla_core) if dla_core is not None else None)
    return ConvertSettings(precision, parse_flag(options, "use_onnx"), parse_workspace(options.get("workspace")),
                           dla_core, int(max_batch))


def export_trt_module(request: ExportRequest) -> Artifact:
    check_known(request.options, EXPORT_OPTIONS, "export")
    if request.precision == "int8":
        raise UsageError("torch2trt int8 needs calibration data: use 'dk run quantize --plugin torch2trt'")
    if request.precision not in ("fp32", "fp16"):
        raise UsageError(f"precision {request.precision!r} is not one of fp32, fp16, int8")
    settings = convert_settings(request.precision, request.options)
    return _convert(request.source, request.out_dir, dict(request.shapes), settings, request.force,
                    request.build_options(), None)


def quantize_trt_module(request: QuantizeRequest) -> Artifact:
    check_known(request.options, QUANTIZE_OPTIONS, "quantize")
    if request.precision != "int8" or request.method != "static":
        raise UsageError("torch2trt quantizes to int8 with calibration data only (--method static)")
    if request.calibration is None:
        raise UsageError("torch2trt int8 needs calibration data: pass --data calib.npz or use the default model")
    settings = convert_settings("int8", request.options)
    from dk.cli.options import parse_shapes

    from dk.calibration import fingerprint

    options = {**request.build_options(), "calibration": fingerprint(request.calibration)}
    return _convert(request.source, request.out_dir, parse_shapes(request.options.get("shapes")), settings,
                    request.force, options, request.calibration)


def _convert(source: ModelSource, out_dir: Path, shapes: dict, settings: ConvertSettings, force: bool,
             build_options: dict[str, Any], calibration: CalibrationData | None) -> Artifact:
    from dk_torch.loading import plan_source

    plan = plan_source(ExportRequest(source=source, shapes=shapes, options={}))
    reason = missing_reason()
    if reason:
        raise MissingDependency(f"the torch2trt plugin {reason}")
    name = artifact_name(plan.name, input_hw(plan.inputs[0]) if plan.inputs else None, settings.precision,
                         version=str(plan.meta.get("version", "1.0")), suffix=settings.suffix)

    def build(folder: Path) -> BuiltModel:
        return _build(folder, name, plan, settings, calibration)

    tools = {d: importlib.metadata.version(d) for d in ("torch", "tensorrt") if _installed(d)}
    tools["torch2trt"] = _version("torch2trt")
    tools["gpu"] = _gpu_name()
    return build_artifact(plugin=PLUGIN, out_dir=out_dir, name=name, source=plan.info,
                          build_options={**build_options, "settings": attrs.asdict(settings)}, tool_versions=tools,
                          model_meta=plan.meta, build=build, force=force)


def _build(folder: Path, name: str, plan: Any, settings: ConvertSettings, calibration) -> BuiltModel:
    import tensorrt as trt
    import torch
    from torch2trt import torch2trt

    from dk.specs import TensorSpec
    from dk_torch.loading import load_module

    module = load_module(plan.source).cuda().eval()
    example = [torch.rand(s.shape, generator=torch.Generator().manual_seed(0)).cuda() for s in plan.inputs]
    kwargs: dict[str, Any] = dict(fp16_mode=settings.precision == "fp16", int8_mode=settings.precision == "int8",
                                  use_onnx=settings.use_onnx, max_batch_size=settings.max_batch_size,
                                  log_level=trt.Logger.WARNING)
    if settings.workspace_bytes:
        kwargs["max_workspace_size"] = settings.workspace_bytes
    if settings.dla_core is not None:
        kwargs.update(default_device_type=trt.DeviceType.DLA, dla_core=settings.dla_core, gpu_fallback=True)
    if calibration is not None:
        kwargs["int8_calib_dataset"] = calibration_samples(calibration, [s.name for s in plan.inputs])
    with torch.no_grad():
        module_trt = torch2trt(module, example, **kwargs)
        reference = module(*example)
    if module_trt is None:
        raise DkError(f"torch2trt could not convert {plan.info.location}")
    torch.save(module_trt.state_dict(), folder / f"{name}.pth")
    (folder / f"{name}.engine").write_bytes(bytes(module_trt.engine.serialize()))
    inputs = [TensorSpec(s.name, ("batch", *s.shape[1:]), "float32", (1, *s.shape[1:]),
                         (settings.max_batch_size, *s.shape[1:])) for s in plan.inputs]
    refs = reference if isinstance(reference, (tuple, list)) else [reference]
    outputs = [TensorSpec(n, ("batch", *r.shape[1:]), "float32") for n, r in zip(plan.output_names, refs)]
    return BuiltModel([f"{name}.pth", f"{name}.engine"], "torch2trt", settings.precision, inputs, outputs,
                      {"use_onnx": settings.use_onnx, "dla_core": settings.dla_core})


def calibration_samples(calibration: CalibrationData, names: list[str]) -> list[list[Any]]:
    """torch2trt's int8_calib_dataset: one item per sample, a list of CUDA tensors without batch axis."""
    import torch

    samples = []
    for feed in calibration():
        arrays = [feed[n] for n in names]
        for i in range(len(arrays[0])):
            samples.append([torch.from_numpy(a[i]).cuda() for a in arrays])
    return samples


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _version(dist: str) -> str:
    return importlib.metadata.version(dist) if _installed(dist) else "unknown"


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
