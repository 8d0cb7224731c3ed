"""int8 post-training quantization with NNCF (``nncf.quantize``) over a calibration set."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
from dk.artifacts import Artifact, BuiltModel, build_artifact, float_nodes_suffix, model_artifact_name
from dk.errors import DkError, MissingDependency, ModelError
from dk.specs import CalibrationData, QuantizeRequest

from dk_openvino.ir import FORMAT, port_specs, save_ir
from dk_openvino.runtime import (
    PLUGIN,
    check_options,
    one_line,
    parse_choice,
    parse_int,
    tool_versions,
)

DEFAULT_CALIBRATION = "digits-calib"


@attrs.frozen
class CalibrationInfo:
    """What a calibration set holds: it enters the manifest and the cache key."""

    name: str
    samples: int
    batches: int
    sha256: str


def quantize_ir(request: QuantizeRequest) -> Artifact:
    """Quantize the request's model to int8 with NNCF and write it as an IR artifact."""
    from dk_openvino.sources import load_source

    own_options = check_options(request.options, "quantize")
    if request.precision != "int8":
        raise DkError(f"the openvino plugin quantizes to int8 only, not {request.precision!r}; build "
                      f"{request.precision} with 'dk run export --plugin openvino --precision {request.precision}'")
    if request.method != "static":
        raise DkError(
            f"quantize method {request.method!r} is not supported by openvino: NNCF does static post-training "
            "quantization with calibration data (--method static)"
        )
    preset = parse_choice(own_options, "preset", ("performance", "mixed"), "performance")
    fast_bias = parse_choice(own_options, "fast_bias_correction", ("1", "0", "true", "false"), "1") in ("1", "true")
    nncf = _require_nncf()

    src = load_source(request.source, request.export)
    if src.precision != "fp32":
        raise ModelError(f"{request.source.location} is {src.precision}; quantize an fp32 model or artifact")
    calibration, calibration_name = request.calibration, request.calibration_name or "custom"
    if calibration is None and src.origin == "default":
        calibration, calibration_name = default_calibration(src.model.inputs[0].get_any_name()), DEFAULT_CALIBRATION
    if calibration is None:
        raise DkError("NNCF int8 quantization needs calibration data for this model: give --data calib.npz "
                      "(array x of representative inputs)")
    info = fingerprint(calibration, calibration_name)
    subset_size = parse_int(own_options, "subset_size", info.samples, minimum=1)
    inputs = port_specs(src.model.inputs)
    meta = src.model_meta
    ignored = ignored_ops(src.model, own_options.get("exclude_nodes", ""))
    float_nodes = sorted({n.strip() for n in own_options.get("exclude_nodes", "").split(",") if n.strip()})
    name = model_artifact_name(src.model_name, meta, inputs, "int8", suffix=float_nodes_suffix(float_nodes),
                               source=src.source)

    def build(folder: Path) -> BuiltModel:
        quantized = run_nncf(nncf, src.model, calibration, request.per_channel, preset, subset_size, fast_bias,
                             ignored)
        files = save_ir(quantized, folder, name, compress_to_fp16=False)
        fake_quantize = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize")
        extra = {"method": "nncf-ptq", "preset": preset, "fake_quantize_nodes": fake_quantize}
        if ignored:
            extra["float_nodes"] = float_nodes
        return BuiltModel(files, FORMAT, "int8", inputs, port_specs(quantized.outputs), extra)

    build_options = {
        **request.build_options(), "options": own_options, "calibration": attrs.asdict(info),
        "preset": preset, "subset_size": subset_size, "fast_bias_correction": fast_bias,
    }
    if ignored:  # as ort records it (a list, at the top of options); only then: other keys stay as they were
        build_options["exclude_nodes"] = float_nodes
    return build_artifact(
        plugin=PLUGIN,
        out_dir=request.out_dir,
        name=name,
        source=src.source,
        build_options=build_options,
        tool_versions={**tool_versions(), "nncf": nncf.__version__},
        model_meta=meta,
        build=build,
        force=request.force,
    )


def ignored_ops(model: Any, option: str) -> list[str]:
    """Option ``exclude_nodes``: the OpenVINO ops an ONNX node became (the op of the node's name and
    those named ``NAME/...``, e.g. ``/conv/Conv/WithoutBiases``), for NNCF's ignored scope."""
    names = [n.strip() for n in option.split(",") if n.strip()]
    ops = [op.get_friendly_name() for op in model.get_ops()]
    found = []
    for name in names:
        matched = [op for op in ops if op == name or op.startswith(name + "/")]
        if not matched:
            raise DkError(f"option exclude_nodes: no node named {name} in the model; 'dk debug layers --plugin "
                          "openvino' lists the quantized nodes")
        found += matched
    return sorted(set(found))


def run_nncf(nncf: Any, model: Any, calibration: CalibrationData, per_channel: bool, preset: str,
             subset_size: int, fast_bias: bool, ignored: list[str] | None = None) -> Any:
    """``nncf.quantize`` with its logging and progress bars kept off stdout (``--json`` owns it)."""
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        QuantizationParameters,
    )

    advanced = AdvancedQuantizationParameters(
        weights_quantization_params=QuantizationParameters(per_channel=per_channel),
    )
    dataset = nncf.Dataset(list(_as_arrays(calibration)))
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return nncf.quantize(
                model, dataset, preset=getattr(nncf.QuantizationPreset, preset.upper()), subset_size=subset_size,
                fast_bias_correction=fast_bias, advanced_parameters=advanced,
                **({"ignored_scope": nncf.IgnoredScope(names=ignored, validate=False)} if ignored else {}),
            )
    except DkError:
        raise
    except Exception as exc:  # noqa: BLE001 - NNCF raises many types; one line for the user
        raise ModelError(f"NNCF quantization failed: {one_line(exc)}") from None
    finally:
        nncf_logger.setLevel(level)


def default_calibration(input_name: str, batch: int = 16) -> CalibrationData:
    """The default model's calibration split as feeds of ``batch`` images."""

    def feeds() -> Iterator[dict[str, Any]]:
        from dk.default_model import load_split

        x, _ = load_split("calib")
        return ({input_name: x[i : i + batch]} for i in range(0, len(x), batch))

    return feeds


def fingerprint(calibration: CalibrationData, name: str) -> CalibrationInfo:
    """Size and sha256 of a calibration set, so a changed set rebuilds the cached artifact."""
    from dk.vision.calibration import fingerprint as calibration_fingerprint

    info = calibration_fingerprint(calibration)
    return CalibrationInfo(name, info["samples"], info["batches"], info["sha256"])


def _as_arrays(calibration: CalibrationData) -> Iterator[dict[str, Any]]:
    import numpy as np

    for feed in calibration():
        yield {k: np.ascontiguousarray(v) for k, v in feed.items()}


def _require_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise MissingDependency("int8 quantization with the openvino plugin needs NNCF: pip install nncf") from None
    _telemetry_off_unless_opted_in()
    return nncf


def _telemetry_off_unless_opted_in() -> None:
    """NNCF counts a missing consent file as consent to usage telemetry; dk never asked the user,
    so it stays off unless they opted in with ``opt_in_out --opt_in`` (openvino-telemetry)."""
    try:
        from openvino_telemetry import Telemetry
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

        instance = Telemetry()  # the instance NNCF created on import; raises when there is none
        if OptInChecker().check(enable_opt_in_dialog=False) != ConsentCheckResult.ACCEPTED:
            instance.consent = False
    except Exception:  # noqa: BLE001 - no telemetry package, or no instance: nothing to turn off
        return
