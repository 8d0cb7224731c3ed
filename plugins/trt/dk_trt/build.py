"""ONNX -> serialized TensorRT engine. Every TensorRT builder call of dk lives in this module.

Reference: the TensorRT Python API (Builder, OnnxParser, IBuilderConfig, IOptimizationProfile,
build_serialized_network) as documented for TensorRT 10.x and 11.x.

API facts and where they come from (NVIDIA/TensorRT python/src/infer/pyCore.cpp at release/10.0
ccf119972b50299ba00d35d39f3938296e187f4e and main a892d22267d9cd2dedc1a0893e6892ac901f6d3d, and the
bindings' name lists in tests/plugins/trt/data): ``IBuilderConfig.clear_flag``, ``can_run_on_DLA``,
``set_timing_cache`` (returns bool), ``ITimingCache.combine`` (returns bool) exist in 10.0 through 11.x.
TF32 is on by default and Polygraphy clears it unless asked (tools/Polygraphy/polygraphy/backend/trt/
config.py, release/10.16 9973b2f4); Polygraphy also locks the timing cache file and combines the cache
already there into the new one before writing (backend/trt/loader.py, same commit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import attrs

from dk.errors import DeviceError, DkError, ModelError

from dk_trt.options import BuildSettings
from dk_trt.versions import PrecisionPath, require_tensorrt

log = logging.getLogger("dk.trt")


@attrs.frozen
class BuiltEngine:
    """A serialized engine and what the build found out: layers placed on the DLA and on the GPU
    (DLA builds only), and what happened to the timing cache."""

    plan: bytes
    dla_layers: int | None = None
    gpu_layers: int | None = None
    timing_cache: str | None = None

    def report(self) -> dict[str, Any]:
        """The manifest's ``extra`` entries of this build."""
        out: dict[str, Any] = {}
        if self.dla_layers is not None:
            out["layers_on_dla"], out["layers_on_gpu"] = self.dla_layers, self.gpu_layers
        if self.timing_cache is not None:
            out["timing_cache"] = self.timing_cache
        return out


def build_engine(
    onnx_path: Path,
    settings: BuildSettings,
    path: PrecisionPath,
    calibrator: Any = None,
    calibration_shapes: dict[str, tuple[int, ...]] | None = None,
    device: int = 0,
) -> BuiltEngine:
    """Parse ``onnx_path`` and build a serialized engine for ``settings`` on ``path``'s TensorRT, on
    CUDA device ``device``; ``calibrator`` (10.x only) calibrates implicit int8 on feeds of
    ``calibration_shapes``."""
    from dk_trt.buffers import select_device

    select_device(device)  # TensorRT builds on the calling thread's current device
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = create_network(trt, builder, path)
    parse_onnx(trt, network, logger, onnx_path)
    config = builder.create_builder_config()
    config.profiling_verbosity = getattr(trt.ProfilingVerbosity, settings.profiling_verbosity.upper())
    if settings.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    set_precision(trt, config, settings.precision, path, explicit_int8=calibrator is None)
    if not settings.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default: "fp32" layers would run TF32 on Ampere+
    add_profiles(builder, config, settings)
    if calibrator is not None:  # TensorRT 10.x implicit quantization only
        config.int8_calibrator = calibrator
        if settings.profiles:  # calibration runs at one fixed shape: the calibration batches'
            fixed = builder.create_optimization_profile()
            for name, shape in (calibration_shapes or {}).items():
                fixed.set_shape(name, shape, shape, shape)
            config.set_calibration_profile(fixed)
    dla = gpu = None
    if settings.dla_core is not None:
        use_dla(trt, builder, config, settings.dla_core)
        dla, gpu = count_dla_layers(config, network, settings.dla_core)
    cache_state = load_timing_cache(config, settings.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(
            f"TensorRT {path.version} could not build an engine from {onnx_path.name} ({settings.precision}); "
            "the builder's log above says why"
        )
    if cache_state is not None:
        cache_state = save_timing_cache(config, settings.timing_cache, cache_state)
    return BuiltEngine(bytes(serialized), dla, gpu, cache_state)


def create_network(trt: Any, builder: Any, path: PrecisionPath) -> Any:
    """An explicit-batch network; strongly typed on TensorRT 11 (always) and for fp16-typed ONNX."""
    if path.major >= 11:
        return builder.create_network()  # strongly typed is the only mode
    return builder.create_network(0)  # 10.x: explicit batch is implied, weakly typed


def parse_onnx(trt: Any, network: Any, logger: Any, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from file: external data next to it is found
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT's ONNX parser refused {onnx_path.name}: {errors or 'no details'}")


def set_precision(trt: Any, config: Any, precision: str, path: PrecisionPath, explicit_int8: bool) -> None:
    """10.x: the FP16/INT8 builder flags (int8 sets FP16 too, so layers without Q/DQ run fp16, not
    fp32). 11.x: nothing; the (fp16-typed or Q/DQ) ONNX decides: BuilderFlag.FP16/INT8 are gone."""
    if path.strongly_typed:
        return
    for flag in precision_flags(precision):
        config.set_flag(getattr(trt.BuilderFlag, flag))


def precision_flags(precision: str) -> tuple[str, ...]:
    """The BuilderFlag names TensorRT 10.x builds ``precision`` with."""
    return {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision]


def add_profiles(builder: Any, config: Any, settings: BuildSettings) -> Any:
    """One optimisation profile with the min/opt/max shapes of every dynamic input (or None)."""
    if not settings.profiles:
        return None
    profile = builder.create_optimization_profile()
    for p in settings.profiles:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    return profile


def use_dla(trt: Any, builder: Any, config: Any, core: int) -> None:
    """Run layers on DLA core ``core``; layers the DLA cannot run fall back to the GPU."""
    cores = builder.num_DLA_cores
    if core >= cores:  # dk_trt.jetson checked the device's count already; this is TensorRT's own
        raise DeviceError(f"dla_core={core}, but TensorRT sees {cores} DLA core(s) on this device")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def count_dla_layers(config: Any, network: Any, core: int) -> tuple[int, int]:
    """(layers the DLA can run, layers that fall back to the GPU), by TensorRT's own
    ``IBuilderConfig.can_run_on_DLA``; refuses a DLA build where no layer can run on the DLA."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    on_dla = sum(1 for layer in layers if config.can_run_on_DLA(layer))
    on_gpu = len(layers) - on_dla
    if on_dla == 0:
        raise DkError(f"dla_core={core}: none of the {len(layers)} layers can run on the DLA (all would fall back to "
                      "the GPU, and the engine would only be named DLA); drop dla_core")
    if on_gpu:
        log.warning("dla_core=%d: %d of %d layers run on the DLA, %d fall back to the GPU", core, on_dla, len(layers),
                    on_gpu)
    return on_dla, on_gpu


@contextlib.contextmanager
def file_lock(file: Path) -> Iterator[None]:
    """An exclusive lock on ``file``'s ``.lock`` sibling while the block runs (POSIX ``flock``; no lock
    where fcntl does not exist), so builds sharing one timing cache do not overwrite each other."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file.with_name(file.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_timing_cache(config: Any, file: Path | None) -> str | None:
    """Attach the timing cache in ``file``: ``loaded``, ``new`` (no file yet) or ``mismatch`` (TensorRT
    refused it, as made by another TensorRT or GPU: the build starts a fresh one); None without a file."""
    if file is None:
        return None
    with file_lock(file):
        data = file.read_bytes() if file.is_file() else b""
    state = "loaded" if data else "new"
    if not config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False):
        log.warning("timing cache %s does not fit this TensorRT and GPU; the build starts a fresh one", file)
        state = "mismatch"
        if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
            raise ModelError(f"TensorRT refused even an empty timing cache for {file}; drop -o timing_cache")
    return state


def save_timing_cache(config: Any, file: Path, state: str) -> str:
    """Merge what another build wrote to ``file`` meanwhile into this build's cache and write it back
    atomically, under the file lock. Returns ``state``, or ``state+merge-failed`` when TensorRT could not
    combine them (this build's cache is written alone)."""
    cache = config.get_timing_cache()
    with file_lock(file):
        if file.is_file() and file.stat().st_size:
            other = config.create_timing_cache(file.read_bytes())
            if not cache.combine(other, ignore_mismatch=False):
                log.warning("could not merge the timing cache in %s into this build's; writing this build's", file)
                state = f"{state}+merge-failed"
        data = bytes(cache.serialize())
        tmp = file.with_name(f".{file.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(data)
        os.replace(tmp, file)
    return state


def dla_core_count() -> int:
    """DLA cores TensorRT sees here (0 off Jetson)."""
    trt = require_tensorrt()
    return int(trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores)
