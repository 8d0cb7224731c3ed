"""Torch model sources: what a source exports as (name, inputs, fingerprint) and the module itself.

:func:`plan_source` reads only file bytes, so a cached export never imports torch;
:func:`load_module` imports torch and builds the ``nn.Module`` (used by export and the engine).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import attrs

from dk.artifacts import SourceInfo, sha256_file, sha256_json
from dk.errors import MissingDependency, ModelError
from dk.specs import ExportRequest, ModelSource, TensorSpec
from dk.sources import model_slug, source_tag

if TYPE_CHECKING:
    from torch import nn

TORCH_KINDS = ("default", "torch-callable", "torchscript", "torch-export")
DEFAULT_INPUT = "input"
DEFAULT_OUTPUT = "output"
DEFAULT_SHAPE = (1, 1, 8, 8)


@attrs.frozen
class SourcePlan:
    """What a torch source exports as, known before torch is imported.

    :ivar source: The source with absolute paths: what the engine reloads from the manifest.
    :ivar inputs: Input specs with example (static) shapes, in ``forward`` argument order.
    """

    source: ModelSource
    name: str
    inputs: list[TensorSpec]
    output_names: list[str]
    info: SourceInfo
    meta: dict[str, Any]


def plan_source(request: ExportRequest) -> SourcePlan:
    """Check the source and shapes of ``request`` and fingerprint the source (no torch import)."""
    source = _absolute(request.source)
    if source.kind not in TORCH_KINDS:
        raise ModelError(
            "the torch plugin exports torch models (default, module:factory, TorchScript, .pt2), "
            f"not a {source.kind!r} source; use an ONNX plugin such as --plugin ort for it"
        )
    if source.kind == "default":
        from dk.sources import default_model_meta

        shapes = request.shapes or {DEFAULT_INPUT: DEFAULT_SHAPE}
        if list(shapes) != [DEFAULT_INPUT] or len(shapes[DEFAULT_INPUT]) != 4:
            raise ModelError(
                "the default model has one input 'input' of rank 4 (batch x 1 x 8 x 8); got "
                f"--shapes for {_fmt_shapes(shapes)}"
            )
        meta = default_model_meta()
        outputs = ["logits"]
        name = meta["name"]
    else:
        shapes = request.shapes or _shapes_from_meta(source.meta)
        if not shapes:
            raise ModelError(
                f"{source.kind} model {source.location} needs its input shape: pass --shapes "
                "input:1x3x224x224 (one name:shape per input, in forward() order) or --input-size 224"
            )
        outputs = [
            n.strip() for n in request.options.get("output_names", "").split(",") if n.strip()
        ]
        outputs = outputs or [DEFAULT_OUTPUT]
        name = _model_name(source)
        meta = {"name": name, "task": request.options.get("task", "unknown")}
    from dk.model_meta import merge_meta

    meta = merge_meta(meta, source.meta)
    name = model_slug(request.options.get("name", meta.get("name", name)))
    meta = {**meta, "name": name}
    inputs = [TensorSpec(n, tuple(int(d) for d in s), "float32") for n, s in shapes.items()]
    info = SourceInfo(source.kind, source.location, source_sha256(source), source_tag(source))
    return SourcePlan(source, name, inputs, outputs, info, meta)


def _shapes_from_meta(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``--input-size HxW`` alone: one image input ``input`` of batch 1, 3 channels (1 for gray)."""
    pre = meta.get("preprocessing") or {}
    if not pre.get("size"):
        return {}
    height, width = (int(d) for d in pre["size"])
    channels = 1 if pre.get("colour") == "gray" else 3
    nhwc = str(pre.get("layout", "NCHW")).upper() == "NHWC"
    return {DEFAULT_INPUT: (1, height, width, channels) if nhwc else (1, channels, height, width)}


def source_sha256(source: ModelSource) -> str:
    """sha256 over what defines the model: weights, program file, or factory and its module file."""
    if source.kind == "default":
        from dk.default_model import WEIGHTS_PATH

        return sha256_file(WEIGHTS_PATH)
    if source.kind == "torch-callable":
        module_file = _module_file(source)
        return sha256_json(
            {
                "factory": source.location,
                "module_sha256": sha256_file(module_file) if module_file else None,
                "weights_sha256": sha256_file(_existing(source.weights, "weights"))
                if source.weights
                else None,
            }
        )
    if source.kind in ("torchscript", "torch-export"):
        digest = sha256_file(_existing(source.location, "model"))
        if source.weights:
            return sha256_json(
                {"model": digest, "weights": sha256_file(_existing(source.weights, "weights"))}
            )
        return digest
    raise ModelError(f"the torch plugin cannot read a {source.kind!r} source")


def load_module(source: ModelSource) -> "nn.Module":
    """Build the ``nn.Module`` for ``source``, in eval mode, with its weights, on the CPU."""
    import torch

    if source.kind == "default":
        from dk_torch.models import digits_net

        return digits_net()
    if source.kind == "torch-callable":
        module = _call_factory(source)
    elif source.kind == "torchscript":
        try:
            module = torch.jit.load(str(_existing(source.location, "model")), map_location="cpu")
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"cannot load {source.location} as TorchScript ({_first_line(exc)}); a state dict "
                f"needs --model module.path:factory --weights {source.location}"
            ) from exc
    elif source.kind == "torch-export":
        try:
            with _quiet_logger("torch.export"):
                module = torch.export.load(str(_existing(source.location, "model"))).module()
        except Exception as exc:  # torch.export.load raises many kinds for a bad file
            raise ModelError(
                f"cannot load {source.location} as a torch.export program (.pt2): "
                f"{_first_line(exc)}"
            ) from exc
    else:
        raise ModelError(f"the torch plugin cannot read a {source.kind!r} source")
    if source.weights:
        load_weights(module, source.weights, source.location)
    set_eval(module)
    return module


def set_eval(module: "nn.Module") -> None:
    """Put ``module`` in eval mode; torch.export modules refuse ``eval()``: flag them directly."""
    try:
        module.eval()
    except NotImplementedError:
        module.training = False


def load_weights(module: "nn.Module", path: str, model: str) -> None:
    """Load a weights file into ``module``: safetensors, or a weights_only-safe torch.save file."""
    import pickle

    import torch

    file = _existing(path, "weights")
    if file.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise MissingDependency(
                f"reading {path} needs safetensors: pip install safetensors"
            ) from None
        try:
            state = load_file(str(file), device="cpu")
        except Exception as exc:
            raise ModelError(f"cannot read safetensors weights {path}: {_first_line(exc)}") from exc
    else:
        if not _looks_like_torch_save(file):
            raise ModelError(
                f"weights file {path} is not a torch.save file (nor .safetensors); save the weights "
                "with torch.save(model.state_dict(), path)"
            )
        try:
            state = torch.load(str(file), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            raise ModelError(
                f"weights file {path} holds objects that are not weights_only-safe; only "
                "weights_only-safe files are accepted (save with torch.save(model.state_dict(), "
                "path)), or use .safetensors"
            ) from exc
        except Exception as exc:  # the unpickler raises IndexError, KeyError... for foreign bytes
            raise ModelError(
                f"cannot read weights file {path}: it is not a torch.save file or it is truncated "
                f"({type(exc).__name__}: {_first_line(exc)}); save it with "
                "torch.save(model.state_dict(), path) or use .safetensors"
            ) from exc
    state = _state_dict(state, path)
    _check_keys(module, state, path, model)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = next(
            (ln.strip() for ln in str(exc).splitlines() if "mismatch" in ln), _first_line(exc)
        )
        raise ModelError(
            f"weights file {path} does not fit the model from {model}: {detail}"
        ) from exc


def _looks_like_torch_save(file: Path) -> bool:
    """torch.save writes a zip archive (torch >= 1.6) or, legacy, a pickle (protocol byte 0x80)."""
    with open(file, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _state_dict(obj: Any, path: str) -> dict[str, Any]:
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    raise ModelError(
        f"weights file {path} holds no state dict (expected name -> tensor, or a dict with a "
        "'state_dict' or 'model' entry)"
    )


def _check_keys(module: "nn.Module", state: dict[str, Any], path: str, model: str) -> None:
    expected = set(module.state_dict())
    if set(state) != expected and all(k.startswith("module.") for k in state):
        state.update(
            {k[len("module.") :]: state.pop(k) for k in list(state)}
        )  # saved from DataParallel
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [
            f"{label} {_few(keys)}"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected))
            if keys
        ]
        raise ModelError(
            f"weights file {path} does not match the model from {model}: {'; '.join(parts)}"
        )
    current = module.state_dict()
    for key, tensor in state.items():
        have, want = tuple(tensor.shape), tuple(current[key].shape)
        if have != want:
            raise ModelError(
                f"weights file {path} does not fit the model from {model}: {key} has shape "
                f"{list(have)} in the file but {list(want)} in the model"
            )


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Mute logger ``name`` for the block: torch.export.load logs the whole traceback of a bad
    file as a warning before raising, and dk reports that failure itself, in one line."""
    logger = logging.getLogger(name)
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


@contextlib.contextmanager
def _import_root(root: str) -> Iterator[None]:
    """Import with ``root`` first on ``sys.path`` (as ``python -m`` puts the current directory)."""
    if not root:
        yield
        return
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        if sys.path and sys.path[0] == root:
            sys.path.pop(0)


def _where(source: ModelSource) -> str:
    return f"in {source.root} or on PYTHONPATH" if source.root else "on PYTHONPATH"


def _call_factory(source: ModelSource) -> "nn.Module":
    from torch import nn

    location = source.location
    module_name, _, attr = location.partition(":")
    try:
        with _import_root(source.root):
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(
            f"cannot import module {module_name!r} for --model {location} ({type(exc).__name__}: "
            f"{_first_line(exc)}); is it {_where(source)}?"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"module {module_name!r} has no callable {attr!r} for --model {location}")
    try:
        model = factory()
    except Exception as exc:
        raise ModelError(
            f"calling {location}() failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"{location}() returned {type(model).__name__}, expected a torch.nn.Module"
        )
    return model


def _module_file(source: ModelSource) -> Path | None:
    """The file that defines the factory's module, found without running it (None for builtins)."""
    location = source.location
    module_name = location.partition(":")[0]
    try:
        with _import_root(source.root):
            spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelError(
            f"cannot find module {module_name!r} for --model {location}; is it {_where(source)}? "
            "(run dk from the folder that holds it, or set PYTHONPATH)"
        )
    origin = Path(spec.origin) if spec.origin and spec.has_location else None
    return origin if origin and origin.is_file() else None


def _absolute(source: ModelSource) -> ModelSource:
    location = source.location
    if source.kind in ("torchscript", "torch-export"):
        location = str(Path(location).resolve())
    weights = str(Path(source.weights).resolve()) if source.weights else None
    root = str(Path(source.root).resolve()) if source.root else ""
    return attrs.evolve(source, location=location, weights=weights, root=root)


def _existing(path: str | None, what: str) -> Path:
    file = Path(str(path))
    if not file.is_file():
        raise ModelError(f"{what} file {path} does not exist")
    return file


def _model_name(source: ModelSource) -> str:
    if source.kind == "torch-callable":
        return source.location.rpartition(":")[2]
    return Path(source.location).stem


def _fmt_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())


def _few(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
