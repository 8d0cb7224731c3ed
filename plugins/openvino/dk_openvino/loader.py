"""Opening an artifact: check the device and the IR against its manifest, compile with the
performance hint of the chosen mode, and wrap the result in an :class:`OpenVinoEngine`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dk.artifacts import Artifact
from dk.errors import ModelError
from dk.specs import TensorSpec

from dk_openvino.engine import MODES, OpenVinoEngine
from dk_openvino.ir import FORMAT, port_specs, read_ir
from dk_openvino.runtime import check_options, core, device_name, one_line, parse_choice, parse_int

PRECISION_HINTS = ("f32", "bf16", "f16")


def load_engine(artifact: Artifact, device: str, options: Mapping[str, str]) -> OpenVinoEngine:
    """Compile an ``openvino-ir`` artifact (or any ``onnx`` one) on ``device``."""
    own = check_options(options, "load")
    mode = parse_choice(own, "mode", MODES, "latency")
    ov_device = device_name(device)
    model = read_model(artifact)
    check_inputs_match(port_specs(model.inputs), artifact)
    compiled = compile_model(model, ov_device, compile_config(own, mode), artifact.name)
    requests = parse_int(own, "nireq", 0, minimum=0) or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    # Names from the model, not the compiled model: compiling folds Identity nodes and their
    # outputs' names into the producer's, and get_any_name() may then pick the inner one.
    return OpenVinoEngine(compiled, name=artifact.name, device=ov_device, precision=artifact.precision, mode=mode,
                          requests=requests, inputs=port_specs(model.inputs), outputs=port_specs(model.outputs))


def compile_model(model: Any, device: str, config: dict[str, Any], name: str) -> Any:
    """``Core.compile_model``, retried once without CPU snippets when they fail: OpenVINO 2026.4's
    snippets reject some graphs ("Layout rank can't be larger than tensor rank", e.g. Gemm K=1
    after Gemm N=1) that compile and run correctly without them."""
    try:
        return core().compile_model(model, device, config)
    except RuntimeError as exc:
        error = exc
    if "snippets" in str(error) and "SNIPPETS_MODE" not in config:
        try:
            return core().compile_model(model, device, {**config, "SNIPPETS_MODE": "DISABLE"})
        except RuntimeError:
            pass
    raise ModelError(f"OpenVINO cannot compile {name} for {device}: {one_line(error)}") from None


def read_model(artifact: Artifact) -> Any:
    """The artifact's model: an IR with its ``.bin`` checked against the manifest, or an ONNX file."""
    if artifact.format == "onnx":
        from dk_openvino.ir import convert_onnx

        return convert_onnx(artifact.model_file)
    if artifact.format != FORMAT:
        raise ModelError(
            f"the openvino plugin runs {FORMAT} and onnx artifacts; {artifact.path} holds a {artifact.format!r} "
            f"model from plugin {artifact.plugin!r}"
        )
    xml = artifact.model_file
    sizes = {entry["name"]: entry.get("size") for entry in artifact.manifest["files"]}
    return read_ir(xml, sizes.get(Path(xml).with_suffix(".bin").name))


def check_inputs_match(found: list[TensorSpec], artifact: Artifact) -> None:
    """Refuse an IR whose inputs (names, dtypes, ranks, fixed dims) differ from those in ``dk.json``."""
    recorded = artifact.inputs
    if [(s.name, s.dtype, _fixed(s)) for s in found] != [(s.name, s.dtype, _fixed(s)) for s in recorded]:
        raise ModelError(
            f"the model in {artifact.path} has inputs {_show(found)}, but its dk.json records {_show(recorded)}; "
            "the files were replaced: re-export the artifact with --force"
        )


def compile_config(options: Mapping[str, str], mode: str) -> dict[str, Any]:
    """Properties for ``compile_model``: the performance hint, and fp32 math unless ``infer_precision``
    says otherwise (OpenVINO would pick bf16 on CPUs that have it and f16 on GPUs)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": mode.upper()}
    config["INFERENCE_PRECISION_HINT"] = parse_choice(options, "infer_precision", PRECISION_HINTS, "f32")
    if "threads" in options:
        config["INFERENCE_NUM_THREADS"] = parse_int(options, "threads", 0, minimum=1)
    if "streams" in options:
        config["NUM_STREAMS"] = parse_int(options, "streams", 0, minimum=1)
    return config


def _fixed(spec: TensorSpec) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in spec.shape)


def _show(specs: list[TensorSpec]) -> str:
    return ", ".join(f"{s.name}{list(s.shape)}:{s.dtype}" for s in specs) or "none"
