"""Export: any model dk can turn into ONNX -> an ONNX Runtime-optimised ONNX (and .ort) artifact."""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import attrs

from dk.artifacts import Artifact, BuiltModel, build_artifact, model_artifact_name
from dk.errors import DkError, MissingDependency, ModelError
from dk.specs import ExportRequest, TensorSpec

from dk_ort.options import EXPORT_OPTIONS, check_options, parse_level
from dk_ort.providers import providers_for, tool_versions
from dk_ort.session import create_session, session_options

PLUGIN = "ort"


def export_onnx(request: ExportRequest) -> Artifact:
    """Resolve the source to ONNX, fix its shapes, optimise it with ONNX Runtime and write the artifact."""
    from dk.onnx_io import io_specs, set_input_shapes
    from dk.sources import resolve_onnx

    check_options(request.options, EXPORT_OPTIONS, "export")
    level = parse_level(request.options.get("level"), "extended")
    fmt = request.options.get("format", "onnx").strip().lower()
    if fmt not in ("onnx", "ort"):
        raise DkError(f"option format={fmt} is not one of onnx, ort")
    if request.precision == "int8":
        raise DkError("the ort plugin makes int8 models by quantization: use 'dk run quantize --plugin ort'")
    if request.precision not in ("fp32", "fp16"):
        raise DkError(f"precision {request.precision!r} is not one of fp32, fp16, int8")
    providers = providers_for(request.device)

    onnx_model = resolve_onnx(request.source, request, keep_model=True)
    model = onnx_model.take_model()
    if request.shapes or not request.dynamic_batch:
        model = set_input_shapes(model, dict(request.shapes), request.dynamic_batch, request.dynamic_hw)
    inputs, _ = io_specs(model)
    inputs = with_ranges(inputs, request.min_shapes, request.max_shapes)
    meta = onnx_model.model_meta
    name = model_artifact_name(onnx_model.model_name, meta, inputs, request.precision,
                               source=onnx_model.source)
    # handed to build() in a list it pops from, so that the graph is freed once serialised and not
    # held beside its bytes and ONNX Runtime's copy while it optimises (a large model's peak memory)
    pending = [model]
    del model

    def build(folder: Path) -> BuiltModel:
        main = f"{name}.onnx"
        optimize(pending.pop().SerializeToString(), folder / main, level, providers)
        if request.precision == "fp16":
            to_fp16(folder / main)
        files = [main]
        if fmt == "ort":
            files.append(write_ort(folder / main, level))
        import onnx

        built = onnx.load(str(folder / main))
        _, outputs = io_specs(built)
        domains = sorted({n.domain for n in built.graph.node if n.domain not in ("", "ai.onnx")})
        extra = {"graph_optimization": level, "optimized_for": _provider_names(providers), "op_domains": domains}
        return BuiltModel(files, "onnx", request.precision, inputs, outputs, extra)

    own = {k: v for k, v in request.options.items() if k in EXPORT_OPTIONS}  # load options do not change the build
    build_options = {**attrs.evolve(request, options=own).build_options(), "level": level, "format": fmt}
    return build_artifact(
        plugin=PLUGIN,
        out_dir=request.out_dir,
        name=name,
        source=onnx_model.source,
        build_options=build_options,
        tool_versions=tool_versions(),
        model_meta=meta,
        build=build,
        force=request.force,
    )


def with_ranges(
    specs: list[TensorSpec], min_shapes: Mapping[str, tuple[int, ...]], max_shapes: Mapping[str, tuple[int, ...]]
) -> list[TensorSpec]:
    """Attach ``--min-shapes``/``--max-shapes`` to the input specs so engines enforce the range."""
    by_name = {s.name: s for s in specs}
    for flag, shapes in (("--min-shapes", min_shapes), ("--max-shapes", max_shapes)):
        for input_name, shape in shapes.items():
            spec = by_name.get(input_name)
            if spec is None:
                raise ModelError(f"{flag} names input {input_name!r}, but the model's inputs are {sorted(by_name)}")
            if len(shape) != len(spec.shape) or any(
                isinstance(d, int) and d != s for d, s in zip(spec.shape, shape)
            ):
                raise ModelError(f"{flag} gives {input_name!r} shape {list(shape)}, which does not fit {list(spec.shape)}")
    for name, lo in min_shapes.items():
        hi = max_shapes.get(name)
        if hi is not None and any(a > b for a, b in zip(lo, hi)):
            raise ModelError(f"--min-shapes {list(lo)} exceeds --max-shapes {list(hi)} for input {name!r}")
    return [
        attrs.evolve(
            s,
            min_shape=tuple(min_shapes[s.name]) if s.name in min_shapes else None,
            max_shape=tuple(max_shapes[s.name]) if s.name in max_shapes else None,
        )
        for s in specs
    ]


def optimize(model_bytes: bytes, target: Path, level: str, providers: list[Any]) -> None:
    """Let ONNX Runtime optimise the graph at ``level`` and save the result to ``target``."""
    create_session(model_bytes, session_options(level, optimized_path=target), providers)
    if not target.is_file():
        raise ModelError(f"onnxruntime did not write the optimised model {target.name}")


def to_fp16(path: Path) -> None:
    """Convert the weights and compute to float16 in place, keeping float32 inputs and outputs."""
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise MissingDependency(f"fp16 export needs onnxruntime.transformers, which fails to import here ({exc})") from None
    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    sort_nodes(model.graph)
    onnx.save(model, str(path))


def sort_nodes(graph: Any) -> None:
    """Order nodes topologically (the fp16 converter appends its input casts at the end)."""
    nodes = list(graph.node)
    producer = {name: i for i, n in enumerate(nodes) for name in n.output if name}
    deps = [{producer[x] for x in n.input if x in producer} for n in nodes]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    waiting = [len(d) for d in deps]
    queue = [i for i, w in enumerate(waiting) if w == 0]
    order = []
    while queue:
        i = heapq.heappop(queue)
        order.append(i)
        for k in users.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(queue, k)
    if len(order) != len(nodes) or order == sorted(order):
        return  # a cycle (leave it to ORT to report) or already sorted
    copies = [type(nodes[i])() for i in order]
    for copy, i in zip(copies, order):
        copy.CopyFrom(nodes[i])
    del graph.node[:]
    graph.node.extend(copies)


def write_ort(onnx_path: Path, level: str) -> str:
    """Write the ORT flatbuffer beside ``onnx_path`` with onnxruntime's converter; return its name."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort
    except ImportError as exc:
        raise MissingDependency(f"format=ort needs onnxruntime.tools, which fails to import here ({exc})") from None
    finally:  # its logger module calls logging.basicConfig on import: undo that
        root.handlers[:] = handlers
    target = onnx_path.with_suffix(".ort")
    quiet = logging.getLogger("ort_format_model.utils")
    with _quiet(quiet), tempfile.TemporaryDirectory(dir=onnx_path.parent) as tmp, _env(
        "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL", level
    ), contextlib.redirect_stdout(io.StringIO()) as log:
        try:
            converted = convert_onnx_models_to_ort(onnx_path, Path(tmp), [OptimizationStyle.Fixed])
        except Exception as exc:  # the converter raises bare Exceptions
            raise ModelError(f"onnxruntime could not convert {onnx_path.name} to .ort: {exc}") from None
        produced = [Path(p) for p in converted or []] or sorted(Path(tmp).glob("*.ort"))
        if not produced:
            raise ModelError(f"onnxruntime wrote no .ort file for {onnx_path.name}: {log.getvalue().strip()[-200:]}")
        shutil.move(str(produced[0]), target)
    return target.name


@contextlib.contextmanager
def _quiet(logger: logging.Logger):
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def _env(key: str, value: str):
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _provider_names(providers: list[Any]) -> list[str]:
    return [p[0] if isinstance(p, tuple) else p for p in providers]
