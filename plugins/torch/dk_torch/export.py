"""torch -> ONNX with the legacy (TorchScript) exporter, written as a cached dk artifact."""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import attrs

from dk.artifacts import Artifact, BuiltModel, build_artifact, model_artifact_name
from dk.errors import DkError, MissingDependency, ModelError, UsageError
from dk.specs import ExportRequest, TensorSpec
from dk_torch.loading import SourcePlan, load_module, plan_source

PLUGIN = "torch"
#: the opset written when none is asked for (as ``dk.pipeline.DEFAULT_OPSET``)
DEFAULT_OPSET = 17
#: fp16 in the torch plugin is its engine's, from the fp32 export, on CUDA only
_FP16_ENGINE = "; the torch engine runs fp16 from its fp32 export on CUDA: dk run bench --plugin torch " \
    "--precision fp16 --device cuda"


def export_onnx(request: ExportRequest) -> Artifact:
    """Export ``request.source`` to fp32 ONNX, or reuse the cached artifact of the same inputs."""
    if request.precision != "fp32":
        raise DkError(
            f"the torch plugin exports fp32 ONNX only, not {request.precision}; build "
            f"{request.precision} with an engine plugin (dk run export --plugin ort --precision "
            f"{request.precision}){_FP16_ENGINE if request.precision == 'fp16' else ''}"
        )
    plan = plan_source(request)
    simplifier = _simplifier() if request.simplify else None
    specs = [_with_range(_dynamic_spec(s, request), request) for s in plan.inputs]
    name = model_artifact_name(plan.name, plan.meta, specs, "fp32", source=plan.info)
    # Versions from package metadata: a cache hit must not pay for importing torch.
    tools = {"torch": metadata.version("torch"), "onnx": metadata.version("onnx")}
    return build_artifact(
        plugin=PLUGIN,
        out_dir=request.out_dir,
        name=name,
        source=plan.info,
        build_options=request.build_options(),
        tool_versions=tools,
        model_meta=plan.meta,
        build=lambda folder: _build(folder, f"{name}.onnx", plan, request, simplifier),
        force=request.force,
    )


def _build(
    folder: Path,
    filename: str,
    plan: SourcePlan,
    request: ExportRequest,
    simplifier: Callable[[Any], Any] | None,
) -> BuiltModel:
    import torch

    from dk.onnx_io import io_specs, load_onnx

    opset = checked_opset(request.opset)
    module = load_module(plan.source)
    if plan.source.kind == "torch-export":
        _check_program_shapes(module, plan, request)
    generator = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(s.shape, generator=generator) for s in plan.inputs)
    path = folder / filename
    try:
        with warnings.catch_warnings():
            # The legacy exporter warns that it is legacy, and about its own internals.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="no signature found for <torch.ScriptMethod")
            # PRESERVE warns about constant folding in training mode; set_eval made it eval mode.
            warnings.filterwarnings("ignore", message="It is recommended that constant folding")
            # opsets 7 and 8 keep the initializers as graph inputs, and say so
            warnings.filterwarnings("ignore", message="Setting 'keep_initializers_as_inputs=False'")
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[s.name for s in plan.inputs],
                output_names=plan.output_names,
                dynamic_axes=_dynamic_axes(plan, request) or None,
                training=torch.onnx.TrainingMode.PRESERVE,  # .pt2 modules refuse train(False)
            )
    except Exception as exc:
        raise ModelError(
            f"torch.onnx.export failed for {plan.info.location}: {_one_line(exc)}"
        ) from exc
    if simplifier is not None:
        import onnx

        onnx.save(simplifier(load_onnx(path)), str(path))
    inputs, outputs = io_specs(load_onnx(path))
    inputs = [_with_range(s, request) for s in inputs]
    extra_files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != filename)
    return BuiltModel(
        files=[filename, *extra_files],
        format="onnx",
        precision="fp32",
        inputs=inputs,
        outputs=outputs,
        extra={"torch_source": attrs.asdict(plan.source, filter=lambda a, _: a.name != "meta")},
    )


def checked_opset(opset: int | None) -> int:
    """``opset`` (None: :data:`DEFAULT_OPSET`) when the installed torch exporter writes it; else
    :class:`UsageError` naming the range it does write (read from ``torch.onnx``, so it follows the
    torch version). Called before the model is loaded: a bad opset fails first and fast."""
    low, high = exporter_opset_range()
    opset = DEFAULT_OPSET if opset is None else opset
    if not low <= opset <= high:
        raise UsageError(f"--opset {opset}: the torch exporter (torch {metadata.version('torch')}) writes opsets "
                         f"{low} to {high}; give one of those (default {DEFAULT_OPSET})")
    return opset


def exporter_opset_range() -> tuple[int, int]:
    """The opsets the TorchScript-based ``torch.onnx.export`` (``dynamo=False``) writes."""
    from torch.onnx import _constants

    high = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET)
    return int(_constants.ONNX_MIN_OPSET), int(high)


def _dynamic_spec(spec: TensorSpec, request: ExportRequest) -> TensorSpec:
    """The input spec as it will be exported: dynamic axes named, the rest fixed."""
    axes = _input_axes(len(spec.shape), request)
    return attrs.evolve(spec, shape=tuple(axes.get(i, d) for i, d in enumerate(spec.shape)))


def _input_axes(rank: int, request: ExportRequest) -> dict[int, str]:
    axes = {0: "batch"} if request.dynamic_batch and rank >= 1 else {}
    if request.dynamic_hw and rank == 4:
        axes.update({2: "height", 3: "width"})
    return axes


def _dynamic_axes(plan: SourcePlan, request: ExportRequest) -> dict[str, dict[int, str]]:
    axes = {s.name: a for s in plan.inputs if (a := _input_axes(len(s.shape), request))}
    if request.dynamic_batch:
        axes.update({name: {0: "batch"} for name in plan.output_names})
    return axes


def _with_range(spec: TensorSpec, request: ExportRequest) -> TensorSpec:
    lo, hi = request.min_shapes.get(spec.name), request.max_shapes.get(spec.name)
    if lo is None and hi is None:
        return spec
    return attrs.evolve(
        spec, min_shape=tuple(lo) if lo else None, max_shape=tuple(hi) if hi else None
    )


def _check_program_shapes(module: Any, plan: SourcePlan, request: ExportRequest) -> None:
    """A torch.export program fixes every axis it was not exported as dynamic; refuse to pretend."""
    placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(plan.inputs):
        raise ModelError(
            f"{plan.info.location} takes {len(placeholders)} input(s), but --shapes names "
            f"{len(plan.inputs)}; give one name:shape per input"
        )
    for spec, node in zip(plan.inputs, placeholders, strict=True):
        value = node.meta.get("val")
        shape = getattr(value, "shape", None)
        if shape is None:
            continue
        for axis, label in _input_axes(len(spec.shape), request).items():
            if axis < len(shape) and isinstance(shape[axis], int):
                raise ModelError(
                    f"{plan.info.location} was saved by torch.export with a static {label} axis "
                    f"(input {spec.name!r} axis {axis} = {shape[axis]}); export it with --static "
                    "(dynamic_batch=False) or re-save it with "
                    "torch.export.export(..., dynamic_shapes=...)"
                )


def _simplifier() -> Callable[[Any], Any]:
    """onnxslim where installed, else onnxsim; checked before any work is done."""
    try:
        import onnxslim

        return onnxslim.slim
    except ImportError:
        pass
    try:
        import onnxsim
    except ImportError:
        raise MissingDependency(
            "simplify needs onnxslim (or onnxsim): pip install onnxslim"
        ) from None

    def simplify(model: Any) -> Any:
        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise ModelError(
                "onnxsim could not validate the simplified model; export without simplify"
            )
        return simplified

    return simplify


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else (text or type(exc).__name__)
