"""``dk run quantize --plugin trt``: an int8 engine from PTQ (a Q/DQ ONNX made by the ort plugin's
quantizer, or TensorRT 10.x's entropy calibrator) or from QAT (``-o qat=1``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dk.artifacts import Artifact, BuiltModel, artifact_name, build_artifact
from dk.errors import DkError, MissingDependency, UsageError
from dk.specs import ExportRequest, ModelSource, QuantizeRequest

from dk_trt.export import PLUGIN, build_environment, build_plan, export_engine, prepare_export
from dk_trt.options import EXPORT_OPTIONS, QUANTIZE_OPTIONS, check_known, parse_flag
from dk_trt.versions import installed_version, precision_path, require_tensorrt

CALIBRATORS = ("qdq", "entropy")


def check_quantize(request: QuantizeRequest) -> tuple[bool, str]:
    """(qat, calibrator) after refusing every inconsistent request; needs no TensorRT."""
    check_known(request.options, QUANTIZE_OPTIONS, "quantize")
    if request.precision != "int8":
        raise UsageError(f"the trt quantize stage makes int8 engines, not {request.precision}; build "
                         f"{request.precision} with 'dk run export --plugin trt --precision {request.precision}'")
    if request.method != "static":
        raise UsageError(
            f"quantize method {request.method!r}: TensorRT has no dynamic quantization; int8 engines need "
            "calibration data (--method static) or -o qat=1"
        )
    qat = parse_flag(request.options, "qat")
    calibrator = request.options.get("calibrator", "qdq").strip().lower()
    if calibrator not in CALIBRATORS:
        raise UsageError(f"option calibrator={calibrator} is not one of {', '.join(CALIBRATORS)}")
    if qat and calibrator == "entropy":
        raise UsageError("-o qat=1 makes its own Q/DQ ONNX; drop calibrator=entropy")
    for key, needs in (("train", "qat"), ("shapes", "qat"), ("calib_cache", "calibrator=entropy")):
        if key in request.options and not (qat if needs == "qat" else calibrator == "entropy"):
            raise UsageError(f"option {key} applies only with {'-o qat=1' if needs == 'qat' else needs}")
    if request.calibration is None:
        raise UsageError(
            "int8 needs calibration data: pass --data calib.npz (array x of inputs) or use the default model; "
            "a model that already has Q/DQ nodes builds with 'dk run export --plugin trt --precision int8 "
            "--model model_qdq.onnx'"
        )
    return qat, calibrator


def engine_request(request: QuantizeRequest, source: ModelSource) -> ExportRequest:
    """The int8 engine build of ``request`` from ``source``: the device, shapes and shape ranges of
    ``request.export`` (when the caller gave one), the trt export options, int8."""
    import attrs

    base = request.export or ExportRequest(source=source)
    trt_options = {k: v for k, v in request.options.items() if k in EXPORT_OPTIONS}
    return attrs.evolve(base, source=source, out_dir=request.out_dir, precision="int8", options=trt_options,
                        force=request.force)


def quantize_engine(request: QuantizeRequest) -> Artifact:
    qat, calibrator = check_quantize(request)
    if calibrator == "entropy":
        export = engine_request(request, request.source)
        prepared = prepare_export(export, calibrated=True)
        env = build_environment(export.device, prepared.settings, "entropy")
        from dk.vision.calibration import fingerprint

        info = {"name": request.calibration_name or "custom", **fingerprint(request.calibration)}
        cache = request.options.get("calib_cache")
        return build_plan(prepared, env, force=request.force, calibration=request.calibration,
                          calibration_info=info, calib_cache=Path(cache) if cache else None)
    require_tensorrt()  # fail before spending time on quantization
    precision_path(installed_version())
    source = qat_source(request) if qat else ptq_source(request)
    return export_engine(engine_request(request, source))


def ptq_source(request: QuantizeRequest) -> ModelSource:
    """The ort plugin's static QDQ quantization with int8 activations, as an ONNX artifact."""
    from dk import api

    ort_request = QuantizeRequest(
        source=request.source, out_dir=request.out_dir, precision="int8", calibration=request.calibration,
        calibration_name=request.calibration_name, method="static", per_channel=request.per_channel,
        # 8-bit weights always: TensorRT's GPU kernels do not saturate, so the host CPU's ISA (which
        # makes the ort plugin pick 7-bit weights on x86 without VNNI) must not change the engine.
        force=request.force, export=request.export,
        options={"activations": "int8", "reduce_range": "0",
                 **{k: v for k, v in request.options.items() if k == "exclude_nodes"}},
    )
    return ModelSource("artifact", str(api.quantize("ort", ort_request).path))


def qat_source(request: QuantizeRequest) -> ModelSource:
    """QAT on the torch model of ``request.source``, written as a cached ``onnx`` artifact."""
    from dk.shapes import parse_shapes
    from dk.onnx_io import io_specs, load_onnx

    try:
        from dk_torch.loading import load_module, plan_source
    except ImportError:
        raise MissingDependency("QAT loads torch models through the torch plugin: pip install ./plugins/torch") from None

    from dk_trt.qat import export_qat_onnx, load_train_hook, qat_library

    library = qat_library()
    train = load_train_hook(request.options.get("train"))
    shapes = parse_shapes(request.options.get("shapes"), "-o shapes")
    plan = plan_source(ExportRequest(source=request.source, shapes=shapes, options={}))
    name = artifact_name(plan.name, None, "int8", version=str(plan.meta.get("version", "1.0")), suffix="qat",
                         source_tag=plan.info.tag)

    def build(folder: Path) -> BuiltModel:
        import torch

        example = [torch.rand(s.shape, generator=torch.Generator().manual_seed(0)) for s in plan.inputs]
        axes = {s.name: {0: "batch"} for s in plan.inputs} | {n: {0: "batch"} for n in plan.output_names}
        report = export_qat_onnx(lambda: load_module(plan.source), example, request.calibration, folder / f"{name}.onnx",
                                 input_names=[s.name for s in plan.inputs], output_names=plan.output_names,
                                 dynamic_axes=axes, train=train, library=library)
        inputs, outputs = io_specs(load_onnx(folder / f"{name}.onnx"))
        return BuiltModel([f"{name}.onnx"], "onnx", "int8", inputs, outputs, {"qat": _asdict(report)})

    from dk.vision.calibration import fingerprint

    options: dict[str, Any] = {**request.build_options(), "calibration": fingerprint(request.calibration)}
    if train is not None:
        options["train"] = request.options["train"]  # the hook's code is the user's: --force after editing it
    artifact = build_artifact(plugin=PLUGIN, out_dir=request.out_dir, name=name, source=plan.info,
                              build_options=options, tool_versions={"qat": library}, model_meta=plan.meta,
                              build=build, force=request.force)
    if artifact.manifest.get("extra", {}).get("qat", {}).get("qdq_nodes", 0) == 0:
        raise DkError(f"QAT with {library} produced no Q/DQ nodes in {artifact.model_file}; the model has no "
                      "layers the library quantizes")
    return ModelSource("artifact", str(artifact.path))


def _asdict(report: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(report)
