"""Export: any model dk can read -> an OpenVINO IR artifact (``.xml`` + ``.bin``), fp32 or fp16 weights."""

from __future__ import annotations

from pathlib import Path

from dk.artifacts import Artifact, BuiltModel, build_artifact, model_artifact_name
from dk.errors import DkError
from dk.specs import ExportRequest

from dk_openvino.ir import FORMAT, port_specs, save_ir
from dk_openvino.runtime import PLUGIN, check_options, tool_versions


def export_ir(request: ExportRequest) -> Artifact:
    """Convert the request's model with OpenVINO, fix its shapes and save it as IR."""
    from dk_openvino.shapes import apply_shapes
    from dk_openvino.sources import load_source

    own_options = check_options(request.options, "export")
    if request.precision == "int8":
        raise DkError("the openvino plugin makes int8 models with NNCF: use 'dk run quantize --plugin openvino'")
    if request.precision not in ("fp32", "fp16"):
        raise DkError(f"precision {request.precision!r} is not one of fp32, fp16, int8")

    src = load_source(request.source, request)
    if src.precision != "fp32":
        raise DkError(f"{request.source.location} is already {src.precision}; export from the fp32 model instead")
    model = apply_shapes(src.model, request.shapes, request.min_shapes, request.max_shapes, request.dynamic_batch,
                         request.dynamic_hw)
    inputs, outputs = port_specs(model.inputs), port_specs(model.outputs)
    meta = src.model_meta
    name = model_artifact_name(src.model_name, meta, inputs, request.precision, source=src.source)

    def build(folder: Path) -> BuiltModel:
        files = save_ir(model, folder, name, compress_to_fp16=request.precision == "fp16")
        extra = {"weights": "fp16" if request.precision == "fp16" else "fp32"}
        return BuiltModel(files, FORMAT, request.precision, inputs, outputs, extra)

    # The IR does not depend on the device or on load-time options (mode=throughput...):
    # leave them out of the cache key so that changing them reuses the artifact.
    build_options = {**request.build_options(), "device": None, "options": own_options}
    return build_artifact(
        plugin=PLUGIN,
        out_dir=request.out_dir,
        name=name,
        source=src.source,
        build_options=build_options,
        tool_versions=tool_versions(),
        model_meta=meta,
        build=build,
        force=request.force,
    )
