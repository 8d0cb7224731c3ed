"""What the user says their model is: task, class labels, input pre-processing and input size.

One way for every plugin: the CLI options ``--task``, ``--labels``, ``--mean``, ``--std``,
``--scale``, ``--channel-order``, ``--layout``, ``--resize``, ``--input-size`` and a
``--model-meta model.json`` file become one dict in the schema of the manifest's ``model`` section
(see :mod:`dk.vision.preprocessing` for ``preprocessing``)::

    {"task": "classification", "labels": ["cat", "dog"],
     "preprocessing": {"size": [224, 224], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                       "scale": 0.00392156862745098, "colour": "rgb", "layout": "NCHW", "resize": "stretch"}}

It travels with the model source (:attr:`dk.specs.ModelSource.meta`), so whichever plugin builds
the artifact writes it into ``dk.json`` and every later stage (infer, bench accuracy, serve,
report) reads it from there. Options given on the command line win over the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from dk.errors import UsageError

#: Top-level keys a ``--model-meta`` file may hold (the manifest's ``model`` section).
META_KEYS = ("name", "version", "variant", "task", "labels", "preprocessing", "top_k", "trained_accuracy")
#: Keys of its ``preprocessing`` section; ``input_size`` and ``channel_order`` are accepted as aliases.
PREPROCESSING_KEYS = ("size", "layout", "colour", "resize", "input_range", "scale", "mean", "std", "pad_value")
_ALIASES = {"input_size": "size", "channel_order": "colour", "color": "colour"}
_TASK = re.compile(r"^[a-z][a-z0-9_-]*$")


def declared_meta(
    *,
    meta_file: str | None = None,
    task: str | None = None,
    labels: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    scale: float | None = None,
    channel_order: str | None = None,
    layout: str | None = None,
    resize: str | None = None,
    input_size: str | None = None,
) -> dict[str, Any]:
    """The model metadata the user declared (``{}`` for none), checked; raises :class:`UsageError`
    naming the bad option or key."""
    meta = read_meta_file(meta_file) if meta_file else {}
    pre = dict(meta.get("preprocessing") or {})
    if task is not None:
        meta["task"] = check_task(task, "--task")
    if labels is not None:
        meta["labels"] = read_labels(labels, "--labels")
    if mean is not None:
        pre["mean"] = _floats(mean, "--mean")
    if std is not None:
        pre["std"] = _floats(std, "--std")
    if scale is not None:
        pre["scale"] = float(scale)
    if channel_order is not None:
        pre["colour"] = channel_order.lower()
    if layout is not None:
        pre["layout"] = layout.upper()
    if resize is not None:
        pre["resize"] = resize.lower()
    if input_size is not None:
        pre["size"] = parse_size(input_size, "--input-size")
    if pre:
        meta["preprocessing"] = check_preprocessing(pre, "--model-meta preprocessing" if meta_file else "options")
    return meta


def read_meta_file(path: str) -> dict[str, Any]:
    """A ``--model-meta`` JSON file; ``labels`` may name a labels file beside it."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UsageError(f"--model-meta {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model-meta {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--model-meta {path} must hold a JSON object with keys such as task, labels, preprocessing")
    unknown = sorted(set(data) - set(META_KEYS))
    if unknown:
        raise UsageError(f"--model-meta {path} has unknown key {unknown[0]!r}; known keys: {', '.join(META_KEYS)}")
    meta = dict(data)
    where = f"--model-meta {path}"
    if "task" in meta:
        meta["task"] = check_task(meta["task"], f"{where} task")
    if isinstance(meta.get("labels"), str):
        labels_path = Path(meta["labels"])
        meta["labels"] = read_labels(str(labels_path if labels_path.is_absolute() else file.parent / labels_path),
                                     f"{where} labels")
    elif "labels" in meta:
        if not isinstance(meta["labels"], list) or not meta["labels"]:
            raise UsageError(f"{where}: labels must be a list of names or the path of a labels file")
        meta["labels"] = [str(v) for v in meta["labels"]]
    if "preprocessing" in meta:
        pre = meta["preprocessing"]
        if not isinstance(pre, dict):
            raise UsageError(f"{where}: preprocessing must be an object")
        pre = {_ALIASES.get(k, k): v for k, v in pre.items()}
        if isinstance(pre.get("size"), (int, str)):
            pre["size"] = parse_size(str(pre["size"]), f"{where} preprocessing size")
        meta["preprocessing"] = pre
    return meta


def check_preprocessing(pre: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check a ``preprocessing`` section's keys and values (the same rules as :mod:`dk.vision.preprocessing`)."""
    from dk.vision.preprocessing import COLOURS, LAYOUTS, RESIZE_POLICIES

    unknown = sorted(set(pre) - set(PREPROCESSING_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown preprocessing key {unknown[0]!r}; known: {', '.join(PREPROCESSING_KEYS)}")
    out = dict(pre)
    for key, allowed in (("colour", COLOURS), ("layout", LAYOUTS), ("resize", RESIZE_POLICIES)):
        if key in out and out[key] not in allowed:
            flag = {"colour": "channel order"}.get(key, key)
            raise UsageError(f"{where}: {flag} {out[key]!r} is not one of {', '.join(allowed)}")
    for key in ("mean", "std"):
        if key in out:
            values = [out[key]] if isinstance(out[key], (int, float)) else out[key]
            if not isinstance(values, list) or len(values) not in (1, 3) or not all(
                isinstance(v, (int, float)) for v in values
            ):
                raise UsageError(f"{where}: {key} must be one number or three (one per channel), got {out[key]!r}")
            out[key] = [float(v) for v in values]
    if any(v == 0 for v in out.get("std", [])):
        raise UsageError(f"{where}: std must not be 0")
    if "size" in out:
        size = out["size"]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(d, int) and d > 0 for d in size)):
            raise UsageError(f"{where}: size must be [height, width] in pixels, got {size!r}")
    if "scale" in out and (not isinstance(out["scale"], (int, float)) or out["scale"] <= 0):
        raise UsageError(f"{where}: scale must be a positive number, got {out['scale']!r}")
    return out


def check_task(task: Any, where: str) -> str:
    if not isinstance(task, str) or not _TASK.match(task.strip().lower()):
        raise UsageError(f"{where} {task!r} is not a task name such as classification or detection")
    return task.strip().lower()


def read_labels(path: str, where: str) -> list[str]:
    """Class labels, one a line (as ``labels.txt`` of torchvision/Bonseyes); blank lines are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"{where} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where} file {path} cannot be read as UTF-8 text ({exc})") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UsageError(f"{where} file {path} holds no labels; write one class name a line")
    return labels


def parse_size(text: str, where: str) -> list[int]:
    """``224`` -> ``[224, 224]``; ``160x120`` -> ``[160, 120]`` (height x width)."""
    parts = str(text).lower().split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"{where} {text!r} must be SIZE or HEIGHTxWIDTH in pixels, e.g. 224 or 160x120")
    sizes = [int(p) for p in parts]
    return sizes * 2 if len(sizes) == 1 else sizes


def check_against_outputs(meta: Mapping[str, Any], outputs: list[Any]) -> None:
    """Refuse class labels that do not match a classifier's output size (raises :class:`UsageError`)."""
    labels = meta.get("labels")
    if meta.get("task") != "classification" or not labels or not outputs:
        return
    out = outputs[0]
    classes = out.shape[-1] if out.shape else None
    if isinstance(classes, int) and classes != len(labels):
        raise UsageError(
            f"the labels name {len(labels)} classes, but the model's output {out.name!r} {list(out.shape)} has "
            f"{classes}; give one label a line for each output class"
        )


def merge_meta(base: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (what the source says) with the user's declarations on top; the
    ``preprocessing`` sections merge key by key."""
    merged = {**base, **declared}
    if "preprocessing" in declared and isinstance(base.get("preprocessing"), Mapping):
        merged["preprocessing"] = {**base["preprocessing"], **declared["preprocessing"]}
    return merged


def _floats(text: str, where: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{where} {text!r} must be numbers separated by commas, e.g. 0.485,0.456,0.406") from None
