"""The trt plugin's build settings: parsed and checked before TensorRT is imported, so that
every mistake in options, shapes, DLA or int8 inputs is one clear error on any machine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from dk.errors import DkError, UsageError
from dk.specs import TensorSpec

EXPORT_OPTIONS = {
    "workspace": "builder workspace limit in MiB (or with a K/M/G suffix), default: TensorRT's choice",
    "dla_core": "build for this Jetson DLA core (fp16/int8 only), layers DLA cannot run fall back to the GPU",
    "timing_cache": "timing cache file, read before and merged into after the build under a file lock (faster "
                    "rebuilds; several builds may share it)",
    "tf32": "1: let fp32 layers use TF32 on Ampere and newer (TensorRT's default; dk clears it so fp32 is fp32)",
    "profiling_verbosity": "layer_names_only (default), detailed (layer names with tactics and formats, for "
                           "--profile-layers and engine inspection) or none",
}
QUANTIZE_OPTIONS = {
    **EXPORT_OPTIONS,
    "qat": "1: quantization-aware training with nvidia-modelopt (or pytorch-quantization) on a torch model",
    "train": "qat: module.path:function called as function(model) to fine-tune the fake-quantized model",
    "calibrator": "qdq (default: Q/DQ ONNX from the ort plugin's quantizer) or entropy (TensorRT 10.x "
                  "IInt8EntropyCalibrator2, implicit quantization)",
    "calib_cache": "entropy: calibration cache file, read when present and written after calibration",
    "shapes": "qat: example input shapes of a torch model other than the default, NAME:1x3x224x224",
    "exclude_nodes": "calibrator=qdq: comma-separated ONNX node names kept in float in the Q/DQ ONNX (mixed precision)",
}
LOAD_OPTIONS: dict[str, str] = {}

#: TensorRT's ProfilingVerbosity values, by option value; the first is TensorRT's own default.
PROFILING_VERBOSITIES = ("layer_names_only", "detailed", "none")

#: The batch range of a dynamic batch axis when no --min/--opt/--max-shapes are given.
DEFAULT_BATCH_RANGE = (1, 1, 64)
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?)?\s*$", re.IGNORECASE)


@attrs.frozen
class Profile:
    """One input's optimisation-profile shapes."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@attrs.frozen
class BuildSettings:
    """Everything the TensorRT builder is told; built from a request by :func:`build_settings`."""

    precision: str = "fp32"
    workspace_bytes: int | None = None
    dla_core: int | None = None
    timing_cache: Path | None = None
    profiles: tuple[Profile, ...] = ()
    profiling_verbosity: str = PROFILING_VERBOSITIES[0]
    tf32: bool = False

    @property
    def dla_suffix(self) -> str:
        return "dla_disabled" if self.dla_core is None else "dla_enabled"


def check_known(
    options: Mapping[str, str],
    known: Mapping[str, str],
    what: str,
    every_stage: Sequence[Mapping[str, str]] = (EXPORT_OPTIONS, QUANTIZE_OPTIONS, LOAD_OPTIONS),
    plugin: str = "trt",
) -> None:
    """Refuse option names no stage of the plugin (``every_stage``) knows, listing the valid ones.
    Names of other stages pass: ``dk run bench -o KEY=VALUE`` hands the same options to export and load."""
    unknown = sorted(set(options) - {*known, *(k for stage in every_stage for k in stage)})
    if unknown:
        valid = "; ".join(f"{k}: {v}" for k, v in known.items()) or "none"
        raise UsageError(f"unknown {plugin} {what} option(s) {', '.join(unknown)}; valid options are {valid}")


def parse_workspace(text: str | None) -> int | None:
    """``"1024"`` (MiB), ``"512M"``, ``"2G"``, ``"65536K"`` -> bytes."""
    if text is None or text == "":
        return None
    match = _SIZE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"option workspace={text} is not a positive size in MiB (e.g. 1024, 512M, 2G)")
    unit = (match.group(2) or "m")[0].lower()
    return int(match.group(1)) << {"k": 10, "m": 20, "g": 30}[unit]


def parse_dla_core(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.strip().isdigit():
        raise UsageError(f"option dla_core={text} must be a DLA core index (0 or 1)")
    return int(text)


def parse_profiling_verbosity(text: str | None) -> str:
    """``detailed`` -> ``detailed``; absent -> ``layer_names_only``, TensorRT's default."""
    value = (text or PROFILING_VERBOSITIES[0]).strip().lower()
    if value not in PROFILING_VERBOSITIES:
        raise UsageError(f"option profiling_verbosity={text} is not one of {', '.join(PROFILING_VERBOSITIES)}")
    return value


def parse_flag(options: Mapping[str, str], key: str) -> bool:
    value = options.get(key, "0").strip().lower()
    if value not in ("0", "1", "true", "false", "yes", "no", ""):
        raise UsageError(f"option {key}={value} must be 1 or 0")
    return value in ("1", "true", "yes")


def check_dla(dla_core: int | None, precision: str, refusal: str | None) -> None:
    """DLA needs a Jetson Xavier/Orin (``refusal`` says why not) and fp16 or int8."""
    if dla_core is None:
        return
    if refusal:
        raise DkError(f"dla_core={dla_core}: {refusal}")
    if precision == "fp32":
        raise UsageError(f"dla_core={dla_core}: the DLA runs fp16 or int8 only; add --precision fp16 (or int8)")


def check_dla_shapes(dla_core: int | None, profiles: Sequence[Profile]) -> None:
    """DLA runs static shapes only (min = opt = max): with GPU fallback every layer would silently
    run on the GPU. Source: TensorRT developer guide, "Working with DLA" (10.x): DLA supports
    dynamic shapes only as one profile with identical min/opt/max."""
    if dla_core is None:
        return
    for p in profiles:
        if not p.min == p.opt == p.max:
            raise UsageError(
                f"dla_core={dla_core}: the DLA runs static shapes only, but input {p.name!r} has the range min "
                f"{list(p.min)}, opt {list(p.opt)}, max {list(p.max)}; give one shape (--shapes {p.name}:"
                f"{'x'.join(str(d) for d in p.opt)}) or equal --min/--opt/--max-shapes"
            )


def profiles_for(
    inputs: Sequence[TensorSpec],
    min_shapes: Mapping[str, tuple[int, ...]],
    opt_shapes: Mapping[str, tuple[int, ...]],
    max_shapes: Mapping[str, tuple[int, ...]],
) -> tuple[Profile, ...]:
    """One profile entry per dynamic input; refuses ranges that do not fit the inputs.

    A dynamic batch axis without a (full) range gets :data:`DEFAULT_BATCH_RANGE` (min 1, opt 1,
    max 64); any other dynamic axis needs --min-shapes and --max-shapes. When both are given, a
    missing --opt-shapes is the --max-shapes.
    """
    by_name = {s.name: s for s in inputs}
    for flag, shapes in (("--min-shapes", min_shapes), ("--opt-shapes", opt_shapes), ("--max-shapes", max_shapes)):
        for name, shape in shapes.items():
            spec = by_name.get(name)
            if spec is None:
                raise UsageError(f"{flag} names input {name!r}, but the model's inputs are {sorted(by_name)}")
            if len(shape) != len(spec.shape):
                raise UsageError(f"{flag} gives {name!r} rank {len(shape)}, but the input is {_fmt(spec.shape)}")
            for axis, (want, got) in enumerate(zip(spec.shape, shape)):
                if isinstance(want, int) and want != got:
                    what = "is not dynamic" if not spec.is_dynamic else f"has axis {axis} fixed at {want}"
                    raise UsageError(f"{flag} gives {name!r} {list(shape)}, but the input {_fmt(spec.shape)} {what}")
    profiles = []
    for spec in inputs:
        if not spec.is_dynamic:
            continue
        lo, opt, hi = min_shapes.get(spec.name), opt_shapes.get(spec.name), max_shapes.get(spec.name)
        default_opt = None
        if lo is None or hi is None:
            lo, hi, default_opt = _default_range(spec, lo, hi)
        opt = opt or default_opt or hi
        for axis, (a, b, c) in enumerate(zip(lo, opt, hi)):
            if not a <= b <= c:
                raise UsageError(
                    f"input {spec.name!r} axis {axis}: min {a}, opt {b}, max {c} must satisfy min <= opt <= max "
                    f"(--min-shapes {list(lo)}, --opt-shapes {list(opt)}, --max-shapes {list(hi)})"
                )
            if a < 1:
                raise UsageError(f"input {spec.name!r} axis {axis}: shapes must be at least 1, got {a}")
        profiles.append(Profile(spec.name, tuple(lo), tuple(opt), tuple(hi)))
    return tuple(profiles)


def _default_range(spec: TensorSpec, lo: tuple[int, ...] | None, hi: tuple[int, ...] | None):
    dynamic = [i for i, d in enumerate(spec.shape) if isinstance(d, str)]
    if dynamic != [0]:
        axes = ", ".join(str(i) for i in dynamic)
        raise UsageError(
            f"input {spec.name!r} {_fmt(spec.shape)} has dynamic axes {axes}: give both --min-shapes and "
            f"--max-shapes for it (e.g. {spec.name}:{'x'.join('1' if isinstance(d, str) else str(d) for d in spec.shape)})"
        )
    fixed = [d if isinstance(d, int) else 0 for d in spec.shape]
    low = lo or tuple([DEFAULT_BATCH_RANGE[0], *fixed[1:]])
    high = hi or tuple([max(DEFAULT_BATCH_RANGE[2], low[0]), *fixed[1:]])
    opt = tuple([min(max(DEFAULT_BATCH_RANGE[1], low[0]), high[0]), *fixed[1:]])
    return low, high, opt


def with_profiles(inputs: Sequence[TensorSpec], profiles: Sequence[Profile]) -> list[TensorSpec]:
    """The input specs with the profile's min/max shapes, so InputChecker enforces the range."""
    by_name = {p.name: p for p in profiles}
    return [
        attrs.evolve(s, min_shape=by_name[s.name].min, max_shape=by_name[s.name].max) if s.name in by_name else s
        for s in inputs
    ]


def settings_json(settings: BuildSettings) -> dict[str, Any]:
    """The settings as they enter the cache key and the manifest."""
    return {
        "precision": settings.precision,
        "workspace_bytes": settings.workspace_bytes,
        "dla_core": settings.dla_core,
        "profiles": [[p.name, list(p.min), list(p.opt), list(p.max)] for p in settings.profiles],
        "profiling_verbosity": settings.profiling_verbosity,
        "tf32": settings.tf32,
    }


def _fmt(shape: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
