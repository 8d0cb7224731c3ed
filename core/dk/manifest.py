"""Validation of an artifact's ``dk.json``: it is untrusted input (a downloaded or hand-edited
folder), so its shape is checked against the documented schema and every file it names must be a
plain file inside the artifact folder, as ONNX external data must be.

The schema is documented in docs/plugin-guide.md ("The manifest").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from dk.errors import ModelError

#: Top-level keys every manifest has, with their JSON types.
REQUIRED = {"schema": str, "name": str, "plugin": str, "format": str, "precision": str, "files": list,
            "inputs": list, "outputs": list}
#: Keys dk writes that older or hand-made manifests may lack; when present they have these types.
OPTIONAL = {"source": dict, "options": dict, "cache_key": str, "tool_versions": dict, "platform": dict,
            "created_at": str, "model": dict, "extra": dict}
_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def validate_manifest(manifest: Any, folder: Path) -> None:
    """Raise :class:`ModelError` naming the first field of ``manifest`` (from ``folder/dk.json``)
    that breaks the schema, or the first file entry that is not a plain file inside ``folder``."""
    where = folder / "dk.json"
    if not isinstance(manifest, dict):
        raise ModelError(f"{where} must hold a JSON object, not {_json_type(manifest)}; re-export the artifact")
    for key, kind in REQUIRED.items():
        if key not in manifest:
            raise ModelError(f"{where}: required field {key!r} is missing; re-export the artifact")
        _check_type(where, key, manifest[key], kind)
    for key, kind in OPTIONAL.items():
        if key in manifest:
            _check_type(where, key, manifest[key], kind)
    if not manifest["files"]:
        raise ModelError(f"{where}: field 'files' is empty; an artifact has at least its model file")
    for i, entry in enumerate(manifest["files"]):
        _check_file_entry(where, f"files[{i}]", entry)
        check_member_path(folder, entry["name"], f"files[{i}].name")
    for key in ("inputs", "outputs"):
        for i, spec in enumerate(manifest[key]):
            _check_tensor_spec(where, f"{key}[{i}]", spec)


def check_member_path(folder: Path, name: str, field: str = "file name") -> Path:
    """``folder/name`` when ``name`` is a plain relative file name that stays inside ``folder``
    (no absolute path, no ``..``, no symlink leading out), else :class:`ModelError`."""
    where = folder / "dk.json"
    pure = Path(name)
    if not name or pure.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ModelError(f"{where}: {field} {name!r} is an absolute path; artifact files must be named "
                         "relative to the artifact folder")
    if any(part in ("..", "") for part in re.split(r"[\\/]", name)) or "\0" in name:
        raise ModelError(f"{where}: {field} {name!r} leaves the artifact folder ('..' or an empty part); "
                         "artifact files must stay inside it")
    path = folder / pure
    try:
        inside = os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep)
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise ModelError(f"{where}: {field} {name!r} is a symlink leading out of the artifact folder; "
                         "artifact files must be plain files inside it")
    return path


def _check_file_entry(where: Path, field: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        _fail(where, field, "an object", entry)
    for key, kind in (("name", str), ("sha256", str), ("size", int)):
        if key not in entry:
            raise ModelError(f"{where}: {field} has no {key!r}; re-export the artifact")
        _check_type(where, f"{field}.{key}", entry[key], kind)
    if not _SHA256.match(entry["sha256"]):
        raise ModelError(f"{where}: {field}.sha256 {entry['sha256'][:80]!r} is not 64 lower-case hex digits")
    if entry["size"] < 0:
        raise ModelError(f"{where}: {field}.size is negative ({entry['size']})")


def _check_tensor_spec(where: Path, field: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        _fail(where, field, "an object", spec)
    for key, kind in (("name", str), ("shape", list)):
        if key not in spec:
            raise ModelError(f"{where}: {field} has no {key!r}; re-export the artifact")
        _check_type(where, f"{field}.{key}", spec[key], kind)
    if "dtype" in spec:
        _check_type(where, f"{field}.dtype", spec["dtype"], str)
    for i, dim in enumerate(spec["shape"]):
        if isinstance(dim, bool) or not isinstance(dim, (int, str)):
            _fail(where, f"{field}.shape[{i}]", "an integer or a string (a dynamic axis)", dim)
    for key in ("min_shape", "max_shape"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(d, int) and not isinstance(d, bool) for d in value)):
            _fail(where, f"{field}.{key}", "a list of integers", value)


def _check_type(where: Path, field: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        _fail(where, field, _TYPE_NAMES[kind], value)


def _fail(where: Path, field: str, expected: str, value: Any) -> None:
    raise ModelError(f"{where}: field {field!r} must be {expected}, not {_json_type(value)}; "
                     "re-export the artifact")


def _json_type(value: Any) -> str:
    names: Mapping[type, str] = {str: "a string", list: "a list", dict: "an object", bool: "a boolean",
                                 int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
