"""ONNX -> serialized TensorRT engine. Every TensorRT builder call of dk lives in this module.

Reference: the TensorRT Python API (Builder, OnnxParser, IBuilderConfig, IOptimizationProfile,
build_serialized_network) as documented for TensorRT 10.x and 11.x.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from dk.errors import DeviceError, ModelError

from dk_trt.options import BuildSettings
from dk_trt.versions import PrecisionPath, require_tensorrt


def build_engine(
    onnx_path: Path,
    settings: BuildSettings,
    path: PrecisionPath,
    calibrator: Any = None,
    calibration_shapes: dict[str, tuple[int, ...]] | None = None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine for ``settings`` on ``path``'s TensorRT;
    ``calibrator`` (10.x only) calibrates implicit int8 on feeds of ``calibration_shapes``."""
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
    add_profiles(builder, config, settings)
    if calibrator is not None:  # TensorRT 10.x implicit quantization only
        config.int8_calibrator = calibrator
        if settings.profiles:  # calibration runs at one fixed shape: the calibration batches'
            fixed = builder.create_optimization_profile()
            for name, shape in (calibration_shapes or {}).items():
                fixed.set_shape(name, shape, shape, shape)
            config.set_calibration_profile(fixed)
    if settings.dla_core is not None:
        use_dla(trt, builder, config, settings.dla_core)
    cache = load_timing_cache(config, settings.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(
            f"TensorRT {path.version} could not build an engine from {onnx_path.name} ({settings.precision}); "
            "the builder's log above says why"
        )
    if cache is not None:
        save_timing_cache(config, settings.timing_cache)
    return bytes(serialized)


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
    """10.x: the FP16/INT8 builder flags. 11.x: nothing; the (fp16-typed or Q/DQ) ONNX decides."""
    if path.strongly_typed:
        return
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # needed for Q/DQ networks and for calibration on 10.x


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


def load_timing_cache(config: Any, file: Path | None) -> Any:
    """Attach the timing cache in ``file`` (a new one when the file does not exist yet)."""
    if file is None:
        return None
    data = file.read_bytes() if file.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def save_timing_cache(config: Any, file: Path) -> None:
    """Write the (grown) timing cache back atomically."""
    data = bytes(config.get_timing_cache().serialize())
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, file)


def dla_core_count() -> int:
    """DLA cores TensorRT sees here (0 off Jetson)."""
    trt = require_tensorrt()
    return int(trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores)
