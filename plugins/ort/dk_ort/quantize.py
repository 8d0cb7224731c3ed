"""int8 quantization with onnxruntime.quantization: static QDQ PTQ with calibration, or dynamic."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import attrs

from dk.artifacts import Artifact, BuiltModel, build_artifact, float_nodes_suffix, model_artifact_name
from dk.errors import DkError, ModelError, UsageError
from dk.sources import original_source
from dk.specs import CalibrationData, ModelSource, QuantizeRequest, TensorSpec
from dk.vision.calibration import fingerprint

from dk_ort.export import PLUGIN
from dk_ort.int8_isa import choose_weight_range
from dk_ort.options import QUANTIZE_OPTIONS, check_options
from dk_ort.providers import tool_versions

DEFAULT_CALIBRATION = "digits-calib"
CALIBRATE_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@attrs.define
class QuantSource:
    """The fp32 ONNX to quantize, where it came from, and the input specs to keep."""

    model: Any  # onnx.ModelProto
    origin: str  # "default", "onnx", "artifact", ...: whether the default calibration applies
    onnx: Any  # dk.sources.OnnxModel of the requested source (source info, meta, name)
    ranges: dict[str, TensorSpec]


def quantize_onnx(request: QuantizeRequest) -> Artifact:
    """Quantize the request's model to int8 and write it as an ort artifact (format onnx, QDQ)."""
    check_options(request.options, QUANTIZE_OPTIONS, "quantize")
    if request.precision != "int8":
        raise DkError(f"the ort plugin quantizes to int8 only, not {request.precision!r}; build "
                      f"{request.precision} with 'dk run export --plugin ort --precision {request.precision}'")
    if request.method not in ("static", "dynamic"):
        raise DkError(
            f"quantize method {request.method!r} is not supported by ort (static or dynamic); a QAT model with "
            "Q/DQ nodes runs as it is: 'dk run export --plugin ort --model qat.onnx'"
        )
    activations = request.options.get("activations", "uint8").strip().lower()
    if activations not in ("uint8", "int8"):
        raise DkError(f"option activations={activations} is not one of uint8, int8")
    weight_range = choose_weight_range(request.options)
    reduce_range = weight_range.reduce_range
    calibrate = request.options.get("calibrate", "minmax").strip().lower()
    if calibrate not in CALIBRATE_METHODS:
        raise DkError(f"option calibrate={calibrate} is not one of minmax, entropy, percentile")

    src = quantizable_source(request.source, request.export)
    from dk.onnx_io import io_specs

    inputs, _ = io_specs(src.model)
    calibration, calibration_name = request.calibration, request.calibration_name or "custom"
    if calibration is None and request.method == "static":
        if src.origin == "default":
            calibration = default_calibration(inputs[0].name, _batch(request.options))
            calibration_name = DEFAULT_CALIBRATION
        else:
            # Falling back to dynamic quantization here would hand the user a model that is often many
            # times slower than fp32 on a CNN (seen: 18-50x), under the name int8: refuse and say why.
            raise UsageError(
                "ort static int8 needs calibration data for this model: pass --data calib.npz (inputs the "
                "model sees in use, 100-500 samples) or --method dynamic for weight-only dynamic quantization "
                "(no data, but often slower than fp32 on convolutional models on a CPU)")
    calib_info = None
    if request.method == "static":
        calib_info = {"name": calibration_name, **fingerprint(calibration)}

    meta = src.onnx.model_meta
    inputs = [src.ranges.get(s.name, s) for s in inputs]
    settings: dict[str, Any] = {"reduce_range": reduce_range}
    if exclude := excluded_nodes(request.options, src.model):  # only then: other artifacts keep their cache keys
        settings["exclude_nodes"] = exclude
    name = model_artifact_name(src.onnx.model_name, meta, inputs, "int8", suffix=float_nodes_suffix(exclude),
                               source=src.onnx.source)
    if request.method == "static":
        settings.update(activations=activations, calibrate=calibrate)

    def build(folder: Path) -> BuiltModel:
        import onnx

        main = folder / f"{name}.onnx"
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            pre = pre_process(src.model, Path(tmp))
            if request.method == "static":
                run_static(pre, main, calibration, request.per_channel, settings)
            else:
                run_dynamic(pre, main, request.per_channel, reduce_range, settings.get("exclude_nodes"))
        quantized = onnx.load(str(main))
        _, outputs = io_specs(quantized)
        ops = [n.op_type for n in quantized.graph.node]
        extra = {"method": request.method, "quant_format": "QDQ" if request.method == "static" else "dynamic",
                 "quantize_linear_nodes": ops.count("QuantizeLinear") + ops.count("DynamicQuantizeLinear"),
                 "weight_range": weight_range.to_json(), "notes": [weight_range.reason]}
        if "exclude_nodes" in settings:
            extra["float_nodes"] = settings["exclude_nodes"]
        return BuiltModel([main.name], "onnx", "int8", inputs, outputs, extra)

    own = {k: v for k, v in request.options.items() if k in QUANTIZE_OPTIONS}  # load options do not change the build
    build_options = {**attrs.evolve(request, options=own).build_options(), "method": request.method,
                     "calibration": calib_info, **settings}
    return build_artifact(
        plugin=PLUGIN,
        out_dir=request.out_dir,
        name=name,
        source=src.onnx.source,
        build_options=build_options,
        tool_versions=tool_versions(),
        model_meta=meta,
        build=build,
        force=request.force,
    )


def quantizable_source(source: ModelSource, export: Any = None) -> QuantSource:
    """The fp32 ONNX graph to quantize for ``source``.

    An ort artifact optimised beyond ``basic`` holds ORT-only fused ops that the quantizer cannot
    read, so its recorded source (the default model or the same ONNX file) is quantized instead,
    with the artifact's shapes.
    """
    from dk.onnx_io import load_onnx, set_input_shapes
    from dk.sources import resolve_onnx

    resolved = resolve_onnx(source, export)  # export: how a torch source becomes ONNX (shapes)
    if source.kind != "artifact":
        return QuantSource(load_onnx(resolved.path), source.kind, resolved, {})
    artifact = Artifact.load(source.path)
    if artifact.precision != "fp32":
        raise ModelError(f"artifact {source.path} is {artifact.precision}; quantize an fp32 model or artifact")
    ranges = {s.name: s for s in artifact.inputs}
    origin = artifact.manifest.get("source", {})
    if not artifact.manifest.get("extra", {}).get("op_domains"):
        return QuantSource(load_onnx(resolved.path), origin.get("kind", "artifact"), resolved, ranges)
    original = original_source(origin)
    if original is None:
        raise ModelError(
            f"artifact {source.path} holds ONNX Runtime-specific fused ops and its source "
            f"{origin.get('location', '?')} is gone or changed; quantize the original model instead"
        )
    options = artifact.manifest.get("options", {})
    shapes = {k: tuple(v) for k, v in (options.get("shapes") or {}).items()}
    dynamic_batch = bool(options.get("dynamic_batch", True))
    model = load_onnx(resolve_onnx(original).path)
    if shapes or not dynamic_batch:
        model = set_input_shapes(model, shapes, dynamic_batch, bool(options.get("dynamic_hw", False)))
    return QuantSource(model, original.kind, resolved, ranges)




def excluded_nodes(options: Mapping[str, str], model: Any) -> list[str]:
    """Option ``exclude_nodes=a,b``: nodes kept in float, each checked against the graph's node names."""
    names = [n.strip() for n in options.get("exclude_nodes", "").split(",") if n.strip()]
    known = {n.name for n in model.graph.node}
    if unknown := [n for n in names if n not in known]:
        raise DkError(f"option exclude_nodes: no node named {', '.join(unknown[:3])} in the model; "
                      "'dk debug layers --plugin ort' lists the quantized nodes")
    return sorted(set(names))


def default_calibration(input_name: str, batch: int) -> CalibrationData:
    """The default model's calibration split as feeds of ``batch`` images."""

    def feeds() -> Iterable[dict[str, Any]]:
        from dk.default_model import load_split

        x, _ = load_split("calib")
        return ({input_name: x[i : i + batch]} for i in range(0, len(x), batch))

    return feeds




def pre_process(model: Any, folder: Path) -> Path:
    """onnxruntime's quantization pre-processing (shape inference, basic optimisation)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = folder / "pre.onnx"
    try:
        quant_pre_process(model, target)
    except Exception:  # symbolic shape inference gives up on some graphs: retry without it
        try:
            quant_pre_process(model, target, skip_symbolic_shape=True)
        except Exception as exc:
            raise ModelError(f"quantization pre-processing failed: {_one_line(exc)}") from None
    return target


def run_static(pre: Path, out: Path, calibration: CalibrationData, per_channel: bool, settings: Mapping[str, Any]) -> None:
    import contextlib
    import sys

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    try:
        with contextlib.redirect_stdout(sys.stderr):  # entropy/percentile print progress; stdout is for --json
            quantize_static(
                pre,
                out,
                feed_reader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=settings["reduce_range"],
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8 if settings["activations"] == "uint8" else QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, CALIBRATE_METHODS[settings["calibrate"]]),
                nodes_to_exclude=settings.get("exclude_nodes", []),
            )
    except DkError:
        raise
    except Exception as exc:
        raise ModelError(f"static quantization failed: {_one_line(exc)}") from None


def run_dynamic(pre: Path, out: Path, per_channel: bool, reduce_range: bool, exclude: list[str] | None = None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(pre, out, per_channel=per_channel, reduce_range=reduce_range, weight_type=QuantType.QInt8,
                         nodes_to_exclude=exclude or [])
    except Exception as exc:
        raise ModelError(f"dynamic quantization failed: {_one_line(exc)}") from None


def feed_reader(calibration: CalibrationData) -> Any:
    """A CalibrationDataReader over a dk calibration callable (rewindable: calls it again)."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader

    class FeedReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(calibration())

        def get_next(self) -> dict[str, Any] | None:
            feed = next(self._feeds, None)
            return None if feed is None else {k: np.asarray(v) for k, v in feed.items()}

        def rewind(self) -> None:
            self._feeds = iter(calibration())

    return FeedReader()


def _batch(options: Mapping[str, str]) -> int:
    from dk_ort.options import parse_int

    return max(1, parse_int(options, "batch", 16))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400] or type(exc).__name__
