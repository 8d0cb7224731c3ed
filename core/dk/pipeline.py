"""The steps the CLI chains together: build an artifact, get data for it, measure accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Union

import attrs
import numpy as np

from dk import api
from dk.artifacts import Artifact
from dk.engine import Engine, random_inputs
from dk.errors import DkError, ModelError, UsageError
from dk.plugins import get_plugin_manager
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, ModelSource, QuantizeRequest, TensorSpec


@attrs.define
class BuildOptions:
    """The CLI options that say what to build, shared by ``dk run`` and ``dk compare``."""

    model: str | None = None
    weights: str | None = None
    artifact: str | None = None
    out: Path = Path("dk-artifacts")
    shapes: dict = attrs.field(factory=dict)
    min_shapes: dict = attrs.field(factory=dict)
    opt_shapes: dict = attrs.field(factory=dict)
    max_shapes: dict = attrs.field(factory=dict)
    static: bool = False
    dynamic_hw: bool = False
    #: ``--opset`` (None: not given; the torch exporter's default)
    opset: int | None = None
    simplify: bool = False
    device: str = "cpu"
    force: bool = False
    options: dict = attrs.field(factory=dict)
    data: str | None = None
    calib_size: int = 128
    method: str = "static"
    #: what the user declared about the model (``--task``, ``--labels``, ``--model-meta``...: dk.model_meta)
    meta: dict = attrs.field(factory=dict)

    def source(self) -> ModelSource:
        return parse_model_arg(self.model, self.weights, self.meta)

    def export_request(self, precision: str) -> ExportRequest:
        source = self.source()
        return ExportRequest(
            source=source,
            out_dir=self.out,
            precision=precision,
            shapes=self.shapes,
            min_shapes=self.min_shapes,
            opt_shapes=self.opt_shapes,
            max_shapes=self.max_shapes,
            dynamic_batch=not self.static,
            dynamic_hw=self.dynamic_hw,
            opset=self._export_opset(source),
            simplify=self.simplify,
            device=self.device,
            force=self.force,
            options=self.options,
        )


    def _export_opset(self, source: ModelSource) -> int | None:
        """The opset the torch exporter writes: ``--opset``, else 17; None for a model that is an
        ONNX file or an artifact already (its own opset stands; none is recorded for it)."""
        if self.opset is not None:
            return self.opset
        return None if source.kind in ("onnx", "artifact") else DEFAULT_OPSET


#: The opset of torch exports when ``--opset`` is not given (the embedded ONNX model's, too).
DEFAULT_OPSET = 17


def export(plugin: str, precision: str, opts: BuildOptions) -> Artifact:
    return api.export(plugin, opts.export_request(precision))


def quantize(plugin: str, opts: BuildOptions, precision: str = "int8") -> Artifact:
    source = ModelSource("artifact", opts.artifact, meta=opts.meta) if opts.artifact else opts.source()
    calibration, name = calibration_data(opts, source) if opts.method == "static" else (None, "")
    request = QuantizeRequest(
        source=source,
        out_dir=opts.out,
        precision=precision,
        calibration=calibration,
        calibration_name=name,
        method=opts.method,
        force=opts.force,
        options=opts.options,
        export=opts.export_request("fp32") if source.kind.startswith("torch") else None,
    )
    return api.quantize(plugin, request)


def build(plugin: str, precision: str, opts: BuildOptions) -> Artifact:
    """The artifact for (plugin, precision): ``--artifact`` as given, int8 through the plugin's
    quantize stage when it has one, anything else through its export stage."""
    if opts.artifact:
        return Artifact.load(opts.artifact)
    if precision == "int8" and get_plugin_manager().implements(plugin, "dk_quantize"):
        return quantize(plugin, opts)
    return export(plugin, precision, opts)


# -- data ---------------------------------------------------------------------------------------

#: Model inputs over samples: one array (a one-input model's, fed to its input) or arrays by input name.
Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]


@attrs.define
class EvalData:
    """Inputs (and labels when known) to run through engines; ``name`` says where they came from."""

    #: the rows of the model's first input (the only one, for most models)
    x: np.ndarray
    y: np.ndarray | None
    name: str
    #: ``dk.vision.evaluation.EvaluationSet`` of a ``--data`` dataset (task, detection ground truth);
    #: score it with ``dk.vision.evaluation.evaluate(run_all(engine, data.x), data.evaluation, meta)``
    evaluation: Any = None
    #: every input's rows by name, for a model with more than one input (``x`` is the first's)
    inputs: dict[str, np.ndarray] | None = None

    @property
    def model_inputs(self) -> Inputs:
        """What to run the model on (:func:`run_all`, :func:`batches`): every input it takes."""
        return self.inputs if self.inputs else self.x

    def first(self, count: int) -> "EvalData":
        """The first ``count`` samples (inputs and labels)."""
        return attrs.evolve(self, x=self.x[:count], y=None if self.y is None else self.y[:count],
                            inputs=take_rows(self.inputs, 0, count) if self.inputs else None)


def sample_count(x: Inputs) -> int:
    """How many samples ``x`` holds (the rows of its first array)."""
    return len(x) if isinstance(x, np.ndarray) else len(next(iter(x.values())))


def take_rows(x: Inputs, start: int, stop: int | None) -> Inputs:
    """Rows ``start:stop`` of every array of ``x``."""
    if isinstance(x, np.ndarray):
        return x[start:stop]
    return {name: array[start:stop] for name, array in x.items()}


def feeds_by_name(engine: Engine, x: Inputs) -> dict[str, np.ndarray]:
    """``x`` as arrays by input name: a lone array goes to the engine's first input."""
    if isinstance(x, np.ndarray):
        return {engine.inputs[0].name: x}
    return dict(x)


def repeated_feeds(engine: Engine, x: Inputs, batch: int) -> dict[str, np.ndarray]:
    """Feeds of ``batch`` rows: the samples of ``x`` in order, repeated when there are fewer."""
    reps = -(-batch // sample_count(x))
    return {name: np.ascontiguousarray(np.concatenate([array] * reps)[:batch])
            for name, array in feeds_by_name(engine, x).items()}


def eval_data(opts: BuildOptions, engine: Engine, limit: int | None = None,
              random_samples: int | None = None, size: tuple[int, int] | None = None) -> EvalData:
    """``--data FILE.npz`` (arrays ``x`` and optional ``y``), ``--data PATH`` of a dataset (a folder
    of class sub-folders, DataTool dataset.json, COCO file: read by the ``dk_load_dataset`` hook and
    pre-processed as the model declares), else the default model's held-out split when the model is
    the default, else seeded random inputs (no labels): ``random_samples`` of them (default one
    batch of 8, or of the engine's fixed batch; a fixed batch rounds up to whole batches).

    :param size: The image height and width to feed (a bench cell of ``--input-sizes``): random
        inputs get it and dataset images are resized to it; default: the declared ``--input-size``,
        else the height and width of ``--shapes``."""
    meta = with_image_size(model_meta(opts), size)
    if opts.data and not is_npz(opts.data):
        from dk.vision import evaluation

        check_one_input(engine.inputs, f"--data {opts.data} is a dataset of images, which feed one input")
        dataset = evaluation.load_dataset(opts.data, "eval")
        found = evaluation.evaluation_set(dataset, engine.inputs[0], meta, limit)
        data = EvalData(found.x, found.y, f"{Path(opts.data).name} ({len(found.x)} {dataset.task} images)", found)
    elif opts.data:
        inputs, y = load_npz_inputs(opts.data, [s.name for s in engine.inputs])
        data = EvalData(next(iter(inputs.values())), y, Path(opts.data).name,
                        inputs=inputs if len(inputs) > 1 else None)
    elif opts.source().kind == "default" and not opts.artifact or _is_default_artifact(opts):
        from dk.default_model import load_split

        x, y = load_split("eval")
        data = EvalData(x, y, "digits-eval")
    else:
        specs = [fed_spec(spec, opts, meta) for spec in engine.inputs]
        inputs = _random_eval_inputs(engine, specs, random_samples)
        data = EvalData(inputs[specs[0].name], None, "random(seed=0)", inputs=inputs if len(inputs) > 1 else None)
    if limit is not None:
        data = data.first(limit)
    return data


def check_one_input(specs: list[TensorSpec], what: str) -> None:
    """Raise :class:`UsageError` when the model takes more than one input (``specs``): ``what`` feeds only one."""
    if len(specs) > 1:
        names = ", ".join(repr(s.name) for s in specs)
        raise UsageError(f"{what}, but the model takes {len(specs)} inputs ({names}); give --data an "
                         f".npz with one array per input, by name ({_savez_example([s.name for s in specs])})")


def _savez_example(names: list[str]) -> str:
    return "np.savez(path, " + ", ".join(f"{name}=..." for name in names) + ", y=labels)"


def fed_spec(spec: TensorSpec, opts: BuildOptions, meta: dict[str, Any]) -> TensorSpec:
    """``spec`` with every dynamic axis but the batch fixed to the size random inputs are fed at:
    the declared image size (``--input-size``) for height and width, else ``--shapes`` of this
    input. Raises :class:`UsageError` when an axis is left that nothing sizes (and no
    ``--min-shapes`` bounds it): a made-up size of 1 would be timed and reported."""
    spec = with_declared_size(spec, meta)
    spec = with_given_shape(spec, opts.shapes.get(spec.name))
    unsized = [axis for axis, dim in enumerate(spec.shape) if axis > 0 and isinstance(dim, str)]
    if unsized and not spec.min_shape:
        example = "x".join(str(d) if isinstance(d, int) else "N" for d in spec.shape)
        raise UsageError(
            f"input {spec.name!r} has dynamic axes {[spec.shape[a] for a in unsized]} (shape {list(spec.shape)}) "
            f"and nothing says what size to feed; give it with --shapes {spec.name}:{example} (N: the size)"
            + (" or --input-size HxW" if len(spec.shape) == 4 else "")
        )
    return spec


def with_given_shape(spec: TensorSpec, shape: tuple[int, ...] | None) -> TensorSpec:
    """``spec`` with its dynamic axes after the batch set from ``shape`` (``--shapes``) when the
    ranks agree; the batch axis stays as it is (the batch to feed is chosen per run)."""
    if not shape or len(shape) != len(spec.shape):
        return spec
    fixed = [spec.shape[0], *(int(given) if isinstance(dim, str) else dim
                              for dim, given in zip(spec.shape[1:], shape[1:]))]
    return attrs.evolve(spec, shape=tuple(fixed))


def with_image_size(meta: dict[str, Any], size: tuple[int, int] | None) -> dict[str, Any]:
    """``meta`` with ``preprocessing.size`` set to ``size`` (when given): the size to feed wins
    over the declared one."""
    if size is None:
        return meta
    return {**meta, "preprocessing": {**(meta.get("preprocessing") or {}), "size": [int(size[0]), int(size[1])]}}


def with_declared_size(spec: TensorSpec, meta: dict[str, Any]) -> TensorSpec:
    """``spec`` with a dynamic height and width (``--dynamic-hw``) set to the declared
    ``--input-size``, so random inputs have the size real images get."""
    size = (meta.get("preprocessing") or {}).get("size")
    if not size or len(spec.shape) != 4:
        return spec
    nhwc = str((meta.get("preprocessing") or {}).get("layout", "NCHW")).upper() == "NHWC"
    axes = (1, 2) if nhwc else (2, 3)
    shape = list(spec.shape)
    for axis, value in zip(axes, size):
        if isinstance(shape[axis], str):
            shape[axis] = int(value)
    return attrs.evolve(spec, shape=tuple(shape))


def is_npz(path: str) -> bool:
    return Path(path).suffix.lower() == ".npz"


def model_meta(opts: BuildOptions) -> dict[str, Any]:
    """The model's ``model`` metadata (task, labels, pre-processing) without building anything."""
    from dk.model_meta import merge_meta

    source = ModelSource("artifact", opts.artifact) if opts.artifact else opts.source()
    if source.kind == "default":
        from dk.sources import default_model_meta

        return merge_meta(default_model_meta(), opts.meta)
    if source.kind == "artifact":
        return merge_meta(Artifact.load(source.location).model_meta, opts.meta)
    return dict(opts.meta)


def _is_default_artifact(opts: BuildOptions) -> bool:
    if not opts.artifact:
        return False
    return Artifact.load(opts.artifact).manifest.get("source", {}).get("kind") == "default"


def load_npz_inputs(path: str, names: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The model's inputs by name and the labels (``y``, optional) of a ``--data`` .npz file: ``x``
    for a one-input model, one array per input name for a model with more (checked: present, one
    row count). Raises :class:`UsageError` naming what is missing."""
    if len(names) == 1:
        x, y = load_npz(path)
        return {names[0]: x}, y
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names if name in data.files}
            found, y = data.files, (data["y"] if "y" in data.files else None)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read data file {path}: {exc}") from None
    missing = [name for name in names if name not in arrays]
    if missing:
        only_x = " holds one input array 'x'" if "x" in found and not arrays else \
            f" has no array {', '.join(map(repr, missing))} (found {', '.join(found) or 'none'})"
        raise UsageError(f"{path}{only_x}, but the model takes {len(names)} inputs ({', '.join(map(repr, names))}); "
                         f"save one array per input, by name: {_savez_example(names)}")
    rows = {name: len(array) for name, array in arrays.items()}
    if len(set(rows.values())) > 1:
        raise UsageError(f"{path}: the input arrays have different numbers of samples "
                         f"({', '.join(f'{n}: {r}' for n, r in rows.items())}); give each input one row per sample")
    return arrays, y


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:
                raise DkError(f"{path} has no array 'x' (found {', '.join(data.files) or 'none'}); save inputs as x=, labels as y=")
            return data["x"], (data["y"] if "y" in data.files else None)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read data file {path}: {exc}") from None


def calibration_data(opts: BuildOptions, source: ModelSource):
    """(callable returning fresh feeds, name) from ``--data`` or the default model's calibration split;
    (None, "") when there is none and the plugin must choose."""
    if opts.data and not is_npz(opts.data):
        return _dataset_calibration(opts, source)
    if opts.data:
        specs = _input_specs(source, opts)
        inputs, _ = load_npz_inputs(opts.data, [spec.name for spec in specs])
        check_calibration_inputs(opts.data, specs, inputs)
        name = f"{Path(opts.data).name}[:{opts.calib_size}]"
    elif source.kind == "default" or (source.kind == "artifact" and _is_default_artifact(opts)):
        from dk.default_model import load_split

        x, _ = load_split("calib")
        inputs = {_input_specs(source, opts)[0].name: x}
        name = f"digits-calib[:{opts.calib_size}]"
    else:
        return None, ""
    inputs = {k: v[: opts.calib_size] for k, v in inputs.items()}

    def feeds() -> Iterator[dict[str, np.ndarray]]:
        for i in range(0, sample_count(inputs), 16):
            yield {k: np.ascontiguousarray(v[i : i + 16]) for k, v in inputs.items()}

    return feeds, name


def check_calibration_inputs(path: str, specs: list[TensorSpec], inputs: dict[str, np.ndarray]) -> None:
    """Raise :class:`InputError` (the message ``--input`` gets, naming ``path``) when the
    calibration arrays do not fit the model's inputs: dtype, rank and every fixed axis after the
    batch, which is as long as the data is. The quantizer would fail later with its own error."""
    from dk.engine import check_inputs
    from dk.errors import InputError

    any_batch = [attrs.evolve(s, shape=("batch", *s.shape[1:]), min_shape=None, max_shape=None) if s.shape else s
                 for s in specs]
    try:
        check_inputs(any_batch, inputs)
    except InputError as exc:
        raise InputError(f"--data {path}: {exc}") from None


def _dataset_calibration(opts: BuildOptions, source: ModelSource):
    """Calibration feeds from a ``--data`` dataset: a seeded draw of ``--calib-size`` images."""
    from dk.onnx_io import io_specs, load_onnx
    from dk.sources import resolve_onnx
    from dk.vision import evaluation

    dataset = evaluation.load_dataset(opts.data, "calib")
    onnx_model = resolve_onnx(source, opts.export_request("fp32") if source.kind.startswith("torch") else None)
    inputs, _ = io_specs(load_onnx(onnx_model.path, load_external_data=False))
    check_one_input(inputs, f"--data {opts.data} is a dataset of images, which feed one input")
    meta = onnx_model.model_meta

    def feeds() -> Iterator[dict[str, np.ndarray]]:
        return evaluation.calibration_batches(dataset, inputs[0], meta, opts.calib_size)

    count = min(opts.calib_size, len(dataset))
    return feeds, f"{Path(opts.data).name}[{count} of {len(dataset)}, seed 0]"


def _input_specs(source: ModelSource, opts: BuildOptions) -> list[TensorSpec]:
    """The inputs of the model ``source`` names (a torch model: of its fp32 ONNX export)."""
    if source.kind == "default":
        return [TensorSpec("input", ("batch", 1, 8, 8), "float32")]
    if source.kind == "artifact":  # any format: the manifest knows the inputs
        return list(Artifact.load(source.path).inputs)
    from dk.onnx_io import io_specs, load_onnx
    from dk.sources import resolve_onnx

    export = opts.export_request("fp32") if source.kind.startswith("torch") else None
    inputs, _ = io_specs(load_onnx(resolve_onnx(source, export).path, load_external_data=False))
    return inputs


def _random_eval_inputs(engine: Engine, specs: list[TensorSpec], wanted: int | None) -> dict[str, np.ndarray]:
    """Seeded random rows for every input of ``specs``, each of its own shape and dtype: one batch
    (8, or the engine's fixed batch) when ``wanted`` is None, else ``wanted`` rows (a fixed batch:
    the whole batches that hold them)."""
    rows = _batch_of(engine, 8)
    if wanted is not None:
        first = specs[0]
        fixed = first.shape and isinstance(first.shape[0], int)
        rows = -(-wanted // rows) * rows if fixed else wanted
    # the batch axis as long as asked, fixed or not (same values for one batch)
    specs = [attrs.evolve(s, shape=("batch", *s.shape[1:])) if s.shape else s for s in specs]
    return random_inputs(specs, batch=rows, seed=0)


def _batch_of(engine: Engine, dynamic_default: int) -> int:
    """The engine's fixed batch size, else ``dynamic_default`` clamped to the batch range the
    engine was built for (``--min-shapes``/``--max-shapes``)."""
    spec = engine.inputs[0] if engine.inputs else None
    first = spec.shape[0] if spec is not None and spec.shape else 1
    if isinstance(first, int):
        return first
    batch = dynamic_default
    if spec.max_shape:
        batch = min(batch, int(spec.max_shape[0]))
    if spec.min_shape:
        batch = max(batch, int(spec.min_shape[0]))
    return batch


def batches(engine: Engine, x: Inputs, size: int = 64) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Feeds over ``x`` in the engine's fixed batch size, or ``size`` when the batch is dynamic."""
    step = _batch_of(engine, size)
    fixed = isinstance(engine.inputs[0].shape[0], int) if engine.inputs[0].shape else True
    count = sample_count(x)
    end = count - step + 1 if fixed else count  # a fixed batch cannot take a partial last batch
    arrays = feeds_by_name(engine, x)
    for i in range(0, max(end, 0), step):
        yield i, {name: np.ascontiguousarray(array[i : i + step]) for name, array in arrays.items()}


def run_all(engine: Engine, x: Inputs) -> dict[str, np.ndarray]:
    """Outputs of ``engine`` over ``x`` (for a fixed batch size, whole batches only), concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for _, feeds in batches(engine, x):
        for key, value in engine.infer(feeds).items():
            parts.setdefault(key, []).append(np.asarray(value))
    if not parts:
        raise DkError(f"no complete batch of {_batch_of(engine, 64)} in {sample_count(x)} samples")
    return {k: np.concatenate(v) for k, v in parts.items()}


def top1_accuracy(outputs: dict[str, Any], y: np.ndarray) -> float:
    logits = next(iter(outputs.values()))
    predicted = np.asarray(logits).reshape(len(logits), -1).argmax(1)
    return float((predicted == y[: len(predicted)]).mean())
