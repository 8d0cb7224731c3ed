"""Export: any model dk can turn into ONNX -> a TensorRT plan artifact (cached, checked, rebuilt
when the cached plan cannot be loaded). Every check runs before TensorRT is imported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from dk.artifacts import Artifact, BuiltModel, build_artifact, float_nodes_suffix, model_artifact_name
from dk.errors import DkError, UsageError
from dk.specs import PRECISIONS, CalibrationData, ExportRequest, TensorSpec

from dk_trt.jetson import dla_refusal
from dk_trt.options import (
    EXPORT_OPTIONS, BuildSettings, check_dla, check_dla_shapes, check_known, parse_dla_core, parse_flag,
    parse_profiling_verbosity, parse_workspace, profiles_for, settings_json, with_profiles,
)
from dk_trt.plan import GpuInfo, PlanError, engine_tool_versions, plan_name
from dk_trt.versions import PrecisionPath, installed_version, precision_path

PLUGIN = "trt"
log = logging.getLogger("dk.trt")


@attrs.frozen
class PreparedExport:
    """An export that passed every check that needs no TensorRT."""

    onnx: Any  # dk.sources.OnnxModel
    model: Any  # onnx.ModelProto with the requested shapes
    inputs: list[TensorSpec]
    settings: BuildSettings
    name: str
    out_dir: Path
    request_options: dict[str, Any]


@attrs.frozen
class BuildEnvironment:
    """The TensorRT version, its precision path and the GPU an engine is built for."""

    path: PrecisionPath
    gpu: GpuInfo
    tools: dict[str, str]


def export_engine(request: ExportRequest) -> Artifact:
    check_known(request.options, EXPORT_OPTIONS, "export")
    prepared = prepare_export(request)
    env = build_environment(request.device, prepared.settings)
    return build_plan(prepared, env, force=request.force)


def prepare_export(request: ExportRequest, *, calibrated: bool = False) -> PreparedExport:
    """Resolve the ONNX, apply --shapes, and validate precision, options, profiles, DLA and int8
    inputs. ``calibrated``: int8 will come from a calibrator, so no Q/DQ nodes are needed."""
    from dk.onnx_io import io_specs, load_onnx, set_input_shapes
    from dk.sources import resolve_onnx

    from dk_trt.qdq import count_qdq

    if request.precision not in PRECISIONS:
        raise UsageError(f"precision {request.precision!r} is not one of {', '.join(PRECISIONS)}")
    workspace = parse_workspace(request.options.get("workspace"))
    verbosity = parse_profiling_verbosity(request.options.get("profiling_verbosity"))
    dla_core = parse_dla_core(request.options.get("dla_core"))
    check_dla(dla_core, request.precision, dla_refusal(core=dla_core) if dla_core is not None else None)
    tf32 = parse_flag(request.options, "tf32")
    cache = request.options.get("timing_cache")
    onnx_model = resolve_onnx(request.source, request)
    model = load_onnx(onnx_model.path)
    ranges = bool(request.min_shapes or request.opt_shapes or request.max_shapes)
    dynamic_batch = request.dynamic_batch and not (dla_core is not None and not ranges)  # DLA: static shapes
    if request.shapes or not dynamic_batch:
        model = set_input_shapes(model, dict(request.shapes), dynamic_batch, request.dynamic_hw and dla_core is None)
    inputs, _ = io_specs(model)
    profiles = profiles_for(inputs, request.min_shapes, request.opt_shapes, request.max_shapes)
    check_dla_shapes(dla_core, profiles)
    if request.precision == "int8" and not calibrated and count_qdq(model) == 0:
        raise UsageError(
            f"int8 needs an explicitly quantized (Q/DQ) ONNX, and {onnx_model.path.name} has no Q/DQ nodes: run "
            "'dk run quantize --plugin trt' (PTQ with calibration data, or -o qat=1), or pass --model a Q/DQ ONNX "
            "(every TensorRT version builds int8 from Q/DQ; only 10.x can also calibrate: -o calibrator=entropy)"
        )
    settings = BuildSettings(request.precision, workspace, dla_core, Path(cache) if cache else None, profiles,
                             verbosity, tf32)
    meta = onnx_model.model_meta
    named = with_profiles(inputs, [p for p in profiles if p.name in request.max_shapes])  # --max-shapes: "batch1-8"
    suffix = "_".join(p for p in (float_nodes_suffix(source_float_nodes(request.source)), settings.dla_suffix) if p)
    name = model_artifact_name(onnx_model.model_name, meta, named, request.precision, suffix=suffix,
                               source=onnx_model.source)
    return PreparedExport(
        onnx_model, model, with_profiles(inputs, profiles), settings, name, request.out_dir, request.build_options()
    )


def source_float_nodes(source: Any) -> list[str]:
    """The nodes a Q/DQ artifact source keeps in float (its ``extra.float_nodes``, as ort's
    quantize records them): an engine built from it is named apart from the plain int8 one."""
    if source.kind != "artifact":
        return []
    try:
        return list(Artifact.load(source.path).manifest.get("extra", {}).get("float_nodes") or [])
    except DkError:
        return []  # resolve_onnx has already said what is wrong with it


def check_path(settings: BuildSettings, path: PrecisionPath, calibrator: str = "qdq") -> None:
    """Refuse what the installed TensorRT version cannot do (DLA on 11.x, calibrators on 11.x)."""
    if settings.dla_core is not None and not path.dla:
        raise DkError(f"dla_core: {path.describe()} has no DLA support; DLA engines need TensorRT 10.x (JetPack 6) "
                      "or a TensorRT 11 release with DLA (see dk_trt.versions.DLA_BY_VERSION)")
    if calibrator == "entropy" and not path.has_calibrator:
        raise DkError(
            f"calibrator=entropy: {path.describe()}; implicit quantization is gone, use the default "
            "calibrator=qdq (a Q/DQ ONNX from the ort plugin's quantizer) or -o qat=1"
        )


def build_environment(device: str, settings: BuildSettings, calibrator: str = "qdq") -> BuildEnvironment:
    """TensorRT version and precision path (checked against the settings), and the GPU to build on."""
    import onnx

    from dk_trt.buffers import gpu_info, select_device
    from dk_trt.runtime import runtime_device
    from dk_trt.versions import require_tensorrt

    require_tensorrt()
    path = precision_path(installed_version())
    check_path(settings, path, calibrator)
    gpu = gpu_info(runtime_device(device))
    select_device(gpu.index)  # the builder builds on this thread's current device: the one the key names
    return BuildEnvironment(path, gpu, engine_tool_versions(path.version, gpu, onnx.__version__))


def build_plan(
    prepared: PreparedExport,
    env: BuildEnvironment,
    *,
    force: bool = False,
    calibration: CalibrationData | None = None,
    calibration_info: dict[str, Any] | None = None,
    calib_cache: Path | None = None,
) -> Artifact:
    """Build (or reuse) the plan artifact; a cached plan TensorRT cannot load is reported and rebuilt."""
    settings = prepared.settings
    build_options = {
        "request": prepared.request_options,
        "engine": settings_json(settings),
        "precision_path": {"strongly_typed": env.path.strongly_typed, "fp16": env.path.fp16, "int8": env.path.int8},
        "calibration": calibration_info,
    }

    def build(folder: Path) -> BuiltModel:
        return _build(folder, prepared, env, calibration, calib_cache)

    artifact = _build_artifact(prepared, env, build_options, build, force)
    if artifact.reused:
        problem = loadable_problem(artifact, env)
        if problem:
            log.warning("cached TensorRT plan %s cannot be used (%s); rebuilding it", artifact.path, problem)
            artifact = _build_artifact(prepared, env, build_options, build, True)
    return artifact


def _build_artifact(prepared: PreparedExport, env: BuildEnvironment, build_options, build, force: bool) -> Artifact:
    return build_artifact(
        plugin=PLUGIN,
        out_dir=prepared.out_dir,
        name=prepared.name,
        source=prepared.onnx.source,
        build_options=build_options,
        tool_versions=env.tools,
        model_meta=prepared.onnx.model_meta,
        build=build,
        force=force,
    )


def loadable_problem(artifact: Artifact, env: BuildEnvironment) -> str | None:
    """Why a cached plan must not be used (read checks, then TensorRT's deserialization), or None."""
    from dk_trt.plan import read_artifact_plan
    from dk_trt.runtime import deserialize

    try:
        deserialize(read_artifact_plan(artifact, env.path.version), str(artifact.model_file),
                    artifact.manifest.get("extra", {}).get("dla_core"))
    except PlanError as exc:
        return str(exc)
    return None


def _build(folder: Path, prepared: PreparedExport, env: BuildEnvironment, calibration, calib_cache) -> BuiltModel:
    import onnx

    from dk.onnx_io import io_specs

    from dk_trt.build import build_engine

    settings, path = prepared.settings, env.path
    model, extra = prepared.model, {"precision_path": path.describe(), "gpu": attrs.asdict(env.gpu)}
    if settings.precision == "fp16" and path.fp16 == "fp16-onnx":
        from dk_trt.fp16_onnx import convert_to_fp16

        model, report = convert_to_fp16(model)
        extra["fp16_onnx"] = attrs.asdict(report)
    elif settings.precision == "int8" and calibration is None:
        from dk_trt.qdq import prepare_for_tensorrt

        model, report = prepare_for_tensorrt(model)
        extra["qdq"] = attrs.asdict(report)
    onnx_file = f"{prepared.name}.onnx"
    onnx.save(model, str(folder / onnx_file))
    calibrator = shapes = buffers = None
    try:
        if calibration is not None:
            from dk_trt.buffers import DeviceBuffers
            from dk_trt.calibrator import entropy_calibrator

            buffers = DeviceBuffers(env.gpu.index)
            dtypes = {s.name: s.dtype for s in prepared.inputs}
            calibrator, shapes = entropy_calibrator(calibration, calib_cache, buffers, dtypes)
            extra["calibrator"] = "IInt8EntropyCalibrator2"
        built = build_engine(folder / onnx_file, settings, path, calibrator, shapes, device=env.gpu.index)
    finally:
        if buffers is not None:
            buffers.close()
    plan_file = plan_name(prepared.name)
    (folder / plan_file).write_bytes(built.plan)
    extra.update(built.report())
    _, outputs = io_specs(prepared.model)
    extra["profiles"] = [attrs.asdict(p) for p in settings.profiles]
    extra["dla_core"] = settings.dla_core
    extra["profiling_verbosity"] = settings.profiling_verbosity
    extra["tf32"] = settings.tf32
    return BuiltModel([plan_file, onnx_file], "tensorrt", settings.precision, prepared.inputs, outputs, extra)
