"""The torch2trt plugin's options, parsed and checked before torch, TensorRT or torch2trt is imported.

Facts from torch2trt master 4e820ae31b4e35d59685935223b05b2e11d47b03 (torch2trt/torch2trt.py):
``max_workspace_size`` is applied only when ``trt_version() < "10.0"``, so it is no option here (dk
needs TensorRT 10); ``max_batch_size`` makes the batch axis dynamic (min 1, max N), and DLA
(``default_device_type=DLA``) refuses any dynamic axis ("Dataset cannot have multiple shapes when
using DLA"); ``use_onnx`` imports ``onnx_graphsurgeon`` and ``onnx``.
"""

from __future__ import annotations

import importlib.util
from typing import Mapping

import attrs

from dk.errors import MissingDependency, UsageError

from dk_trt.jetson import dla_refusal
from dk_trt.options import check_dla, check_known, parse_dla_core, parse_flag

EXPORT_OPTIONS = {
    "use_onnx": "1: torch2trt goes through ONNX (files named ..._with_onnx_trt.pth; needs onnx-graphsurgeon)",
    "dla_core": "build for this Jetson DLA core (fp16/int8, batch 1 only), with GPU fallback",
    "max_batch_size": "largest batch the engine accepts (default 64; 1 with dla_core)",
}
QUANTIZE_OPTIONS = {**EXPORT_OPTIONS, "shapes": "example input shapes of a torch model other than the default"}
LOAD_OPTIONS: dict[str, str] = {}
EVERY_STAGE = (EXPORT_OPTIONS, QUANTIZE_OPTIONS, LOAD_OPTIONS)
#: Options of the trt plugin that torch2trt has no way to apply, with what to do instead.
NOT_APPLIED = {
    "workspace": "torch2trt sets max_workspace_size only for TensorRT < 10 (torch2trt.py); use --plugin trt "
                 "-o workspace=... for a workspace limit",
}
DEFAULT_MAX_BATCH = 64
USE_ONNX_HINT = ("use_onnx=1 needs onnx and onnx-graphsurgeon: pip install onnx onnx-graphsurgeon (or "
                 "pip install './plugins/torch2trt[onnx]')")


@attrs.frozen
class ConvertSettings:
    precision: str
    use_onnx: bool
    dla_core: int | None
    max_batch_size: int

    @property
    def suffix(self) -> str:
        """The guide's ``dla_disabled_trt`` (and kin), after ``batch1-N`` when ``max_batch_size`` is
        not the default: engines for other batch bounds get folders of their own instead of
        replacing each other's."""
        dla = "dla_disabled" if self.dla_core is None else "dla_enabled"
        engine = f"{dla}_with_onnx_trt" if self.use_onnx else f"{dla}_trt"
        if self.dla_core is None and self.max_batch_size != DEFAULT_MAX_BATCH:
            return f"batch1-{self.max_batch_size}_{engine}"
        return engine


def check_options(options: Mapping[str, str], known: Mapping[str, str], what: str) -> None:
    """Refuse options torch2trt would ignore, and names no torch2trt stage knows."""
    for key, why in NOT_APPLIED.items():
        if key in options:
            raise UsageError(f"option {key}: {why}")
    check_known(options, known, what, EVERY_STAGE, plugin="torch2trt")


def convert_settings(precision: str, options: Mapping[str, str]) -> ConvertSettings:
    """Parse and check options (no heavy import)."""
    dla_core = parse_dla_core(options.get("dla_core"))
    default = 1 if dla_core is not None else DEFAULT_MAX_BATCH
    max_batch = options.get("max_batch_size", str(default)).strip()
    if not max_batch.isdigit() or int(max_batch) < 1:
        raise UsageError(f"option max_batch_size={max_batch} must be a positive whole number")
    if dla_core is not None and int(max_batch) != 1:
        raise UsageError(f"dla_core={dla_core}: torch2trt builds DLA engines for one batch size only (no dynamic "
                         f"axes); drop max_batch_size={max_batch}")
    check_dla(dla_core, precision, dla_refusal(core=dla_core) if dla_core is not None else None)
    return ConvertSettings(precision, parse_flag(options, "use_onnx"), dla_core, int(max_batch))


def check_use_onnx(settings: ConvertSettings) -> None:
    """use_onnx=1 imports onnx and onnx_graphsurgeon inside torch2trt: name them before converting."""
    if settings.use_onnx:
        missing = [m for m in ("onnx", "onnx_graphsurgeon") if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingDependency(f"{USE_ONNX_HINT} (missing: {', '.join(missing)})")


def cuda_device(device: str) -> str:
    """``cpu`` (the CLI's default) and ``cuda`` mean ``cuda:0``: torch2trt has no CPU."""
    from dk_trt.buffers import device_index

    return f"cuda:{0 if device.strip().lower() in ('', 'cpu') else device_index(device)}"
