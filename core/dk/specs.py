"""Data that crosses the boundary between core and plugins: typed attrs classes, not dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import attrs

#: A dimension is a fixed size, or a symbolic name (``"batch"``) for a dynamic axis.
Dim = int | str

PRECISIONS = ("fp32", "fp16", "int8")


def _tuple_of_dims(value: Iterable[Dim]) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, str) else int(d) for d in value)


@attrs.frozen
class TensorSpec:
    """Name, shape and numpy dtype name of one model input or output.

    A dimension that is a string is dynamic (``("batch", 1, 8, 8)``); ``min_shape`` and
    ``max_shape`` optionally bound the dynamic dimensions an engine was built for.
    """

    name: str
    shape: tuple[Dim, ...] = attrs.field(converter=_tuple_of_dims)
    dtype: str = "float32"
    min_shape: tuple[int, ...] | None = attrs.field(default=None)
    max_shape: tuple[int, ...] | None = attrs.field(default=None)

    @property
    def is_dynamic(self) -> bool:
        return any(isinstance(d, str) for d in self.shape)

    def concrete_shape(self, batch: int = 1, fill: int = 1) -> tuple[int, ...]:
        """The shape with the first dynamic dim set to ``batch`` and any other to ``fill``."""
        out = []
        for i, d in enumerate(self.shape):
            if isinstance(d, int):
                out.append(d)
            elif i == 0:
                out.append(batch)
            else:
                out.append(self.min_shape[i] if self.min_shape else fill)
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.min_shape is not None:
            data["min_shape"] = list(self.min_shape)
        if self.max_shape is not None:
            data["max_shape"] = list(self.max_shape)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TensorSpec":
        return cls(
            name=data["name"],
            shape=data["shape"],
            dtype=data.get("dtype", "float32"),
            min_shape=tuple(data["min_shape"]) if data.get("min_shape") else None,
            max_shape=tuple(data["max_shape"]) if data.get("max_shape") else None,
        )


@attrs.frozen
class ModelSource:
    """What the user pointed ``--model`` at.

    ``kind`` is one of ``default`` (the embedded model), ``onnx`` (an ONNX file), ``artifact``
    (a dk artifact directory), ``torch-callable`` (``module.path:factory`` plus optional
    ``weights``), ``torchscript`` or ``torch-export`` (a saved program file).

    :ivar root: For ``module.path:factory``: the folder it is imported from first (the current
        directory when ``--model`` was given, as ``python -m`` does).
    :ivar meta: What the user declared about the model (task, labels, pre-processing: see
        :mod:`dk.model_meta`); plugins get it merged into the source's own metadata from
        :func:`dk.sources.resolve_onnx` and write it into the manifest's ``model`` section.
    """

    kind: str
    location: str = ""
    weights: str | None = None
    root: str = ""
    meta: dict[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def path(self) -> Path:
        return Path(self.location)


@attrs.define
class ExportRequest:
    """Everything an export needs; passed as ``request`` to :func:`dk_export`.

    :ivar source: The model to export.
    :ivar out_dir: Parent folder; the artifact goes to ``out_dir/<plugin>/<artifact name>/``.
    :ivar precision: ``fp32``, ``fp16`` or ``int8``.
    :ivar shapes: Input shapes by input name (``--shapes``); empty means the model's own. They fix
        every axis except a dynamic batch axis, which stays dynamic unless ``dynamic_batch`` is false
        (``--static``), as in torch's export with example inputs.
    :ivar min_shapes/opt_shapes/max_shapes: Ranges for dynamic inputs (optimisation profiles).
    :ivar dynamic_batch: Keep the batch axis dynamic.
    :ivar dynamic_hw: Also keep height and width dynamic (4-D image inputs).
    :ivar opset: ONNX opset for exporters that produce ONNX (the torch exporter); None when the
        source is ONNX already (its file's opset stands, and none is recorded).
    :ivar simplify: Run onnxslim/onnxsim where installed.
    :ivar device: Target device (``cpu``, ``cuda``, ...), for engines built per device.
    :ivar force: Rebuild even when a cached artifact matches.
    :ivar options: Plugin-specific options (``--option key=value``), recorded in the manifest.
    """

    source: ModelSource
    out_dir: Path = attrs.field(converter=Path, factory=lambda: Path("dk-artifacts"))
    precision: str = "fp32"
    shapes: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    min_shapes: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    opt_shapes: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    max_shapes: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    dynamic_batch: bool = True
    dynamic_hw: bool = False
    opset: int | None = 17
    simplify: bool = False
    device: str = "cpu"
    force: bool = False
    options: dict[str, str] = attrs.field(factory=dict)

    def build_options(self) -> dict[str, Any]:
        """The options that change what gets built; they enter the cache key and the manifest."""
        return {
            "precision": self.precision,
            "shapes": {k: list(v) for k, v in sorted(self.shapes.items())},
            "min_shapes": {k: list(v) for k, v in sorted(self.min_shapes.items())},
            "opt_shapes": {k: list(v) for k, v in sorted(self.opt_shapes.items())},
            "max_shapes": {k: list(v) for k, v in sorted(self.max_shapes.items())},
            "dynamic_batch": self.dynamic_batch,
            "dynamic_hw": self.dynamic_hw,
            "opset": self.opset,
            "simplify": self.simplify,
            "device": self.device,
            "options": dict(sorted(self.options.items())),
        }


#: A calibration set: a callable that returns a fresh iterable of input feeds each time it is called.
CalibrationData = Callable[[], Iterable[Mapping[str, Any]]]


@attrs.define
class QuantizeRequest:
    """Everything a quantization needs; passed as ``request`` to :func:`dk_quantize`.

    :ivar source: The model to quantize (an fp32 artifact, an ONNX file or the default model).
    :ivar out_dir: Parent folder for the quantized artifact.
    :ivar precision: Target precision, normally ``int8``.
    :ivar calibration: Calibration feeds for static PTQ, or ``None`` (dynamic quantization
        where the engine supports it).
    :ivar calibration_name: What the calibration set is, recorded in the manifest.
    :ivar method: ``static``, ``dynamic`` or ``qat``.
    :ivar per_channel: Per-channel weight scales.
    :ivar force: Rebuild even when a cached artifact matches.
    :ivar options: Plugin-specific options.
    :ivar export: How a torch source becomes the fp32 ONNX to quantize (shapes, opset, dynamic
        axes): pass it to :func:`dk.sources.resolve_onnx`. None: the defaults, enough for ONNX
        files, artifacts and the default model.
    """

    source: ModelSource
    out_dir: Path = attrs.field(converter=Path, factory=lambda: Path("dk-artifacts"))
    precision: str = "int8"
    calibration: CalibrationData | None = None
    calibration_name: str = ""
    method: str = "static"
    per_channel: bool = True
    force: bool = False
    options: dict[str, str] = attrs.field(factory=dict)
    export: ExportRequest | None = None

    def build_options(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "calibration": self.calibration_name if self.calibration is not None else None,
            "method": self.method,
            "per_channel": self.per_channel,
            "options": dict(sorted(self.options.items())),
        }


@attrs.define
class PluginInfo:
    """What a plugin says about itself for ``dk doctor`` (see :func:`dk_describe`).

    :ivar name: Plugin name, the one users pass to ``--plugin``.
    :ivar kind: ``engine``, ``exporter``, ``platform``, ``data`` or ``runner`` (a sweep runner).
    :ivar formats_in/formats_out: Model formats it reads and writes (``onnx``, ``torch``, ``ort``...).
    :ivar precisions: Precisions it can build or run.
    :ivar devices: Devices it can run on here (only probed with ``--probe``; else what it supports).
    :ivar available: Whether it can do its work on this machine.
    :ivar reason: Why not, and what to install or change, when ``available`` is false.
    :ivar status: ``ok``, ``missing-dependency``, ``no-device``, or ``incompatible`` (an installed
        library version the plugin cannot work with, such as torch2trt with TensorRT 11).
    :ivar versions: Versions of the libraries it wraps that are installed.
    :ivar details: Anything else worth showing (``--probe`` results, device names).
    :ivar targets: Fleet target tags this platform plugin recognises this machine as (``cuda-sm90``,
        ``jetson-orin``, ``rpi4``); ``dk doctor --ray-resources`` advertises them as ``dk-target:TAG``.
    """

    name: str
    kind: str = "engine"
    formats_in: list[str] = attrs.field(factory=list)
    formats_out: list[str] = attrs.field(factory=list)
    precisions: list[str] = attrs.field(factory=list)
    devices: list[str] = attrs.field(factory=list)
    available: bool = True
    reason: str = ""
    status: str = "ok"
    versions: dict[str, str] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)
    targets: list[str] = attrs.field(factory=list)


@attrs.frozen
class HwSample:
    """One hardware statistic at one time: ``HwSample("cpu.util", 37.5, "%", t)``."""

    metric: str
    value: float
    unit: str
    timestamp: float
    source: str = ""
