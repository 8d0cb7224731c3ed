"""The ort plugin's options, in one place: what each stage accepts, and their checks and parsing.

Every stage module imports from here and this module imports none of them, so the option lists
have no import circle (the trt plugin's ``dk_trt.options`` does the same)."""

from __future__ import annotations

from typing import Mapping

from dk.errors import DkError

EXPORT_OPTIONS = {
    "level": "graph optimisation basic|extended|all (default extended)",
    "format": "onnx (default) or ort (also write an .ort flatbuffer)",
}
QUANTIZE_OPTIONS = {
    "activations": "uint8 (default: fastest on x86 AVX2/AVX-512) or int8",
    "reduce_range": "1 to quantize weights to 7 bits; default: 1 on x86 without VNNI (AVX2, AVX-512 without VNNI), else 0",
    "calibrate": "minmax (default), entropy or percentile",
    "batch": "calibration batch size for the default model's calibration split (default 16)",
    "exclude_nodes": "comma-separated node names kept in float (mixed precision; dk debug layers names them)",
}
LOAD_OPTIONS = {
    "threads": "intra-op threads (default 0: ONNX Runtime's choice)",
    "level": "graph optimisation at load: disable|basic|extended|all (default all)",
    "format": "onnx (default) or ort: run the artifact's .ort flatbuffer",
    "spin": "1 (default) lets idle intra-op threads spin for lower latency; 0 frees the cores at once",
}

#: ``level=`` option values -> GraphOptimizationLevel member names.
LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def check_options(options: Mapping[str, str], known: Mapping[str, str], what: str) -> None:
    """Refuse option keys no stage of this plugin knows, listing the valid ones with their meaning.
    Keys of the other stages pass: ``dk run bench -o threads=1`` gives the same options to export,
    quantize and load, and each stage uses its own."""
    from dk.plugin_options import SOURCE_OPTIONS  # read while a torch source becomes ONNX

    every_stage = {*LOAD_OPTIONS, *EXPORT_OPTIONS, *QUANTIZE_OPTIONS, *SOURCE_OPTIONS}
    unknown = sorted(set(options) - every_stage)
    if unknown:
        valid = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise DkError(f"unknown ort {what} option(s) {', '.join(unknown)}; valid options are {valid}")


def parse_level(value: str | None, default: str) -> str:
    level = (value or default).strip().lower()
    if level not in LEVELS:
        raise DkError(f"option level={value} is not one of {', '.join(LEVELS)}")
    return level


def parse_int(options: Mapping[str, str], key: str, default: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DkError(f"option {key}={raw} must be a whole number") from None
    if value < 0:
        raise DkError(f"option {key}={raw} must not be negative")
    return value
