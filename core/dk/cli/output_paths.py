"""Checks of the files a command will write, made before its long work starts, so that a sweep's
results are not lost to a bad ``--output`` at the very end. Nothing is created here: folders are
made when the file is written."""

from __future__ import annotations

import os
from pathlib import Path

from dk.errors import UsageError


def check_output_file(path: str | os.PathLike, option: str, example: str = "results.json") -> Path:
    """``path`` if a file can be written there: not a folder, and its folder exists (writable) or
    can be created; else a one-line :class:`UsageError` naming ``option``."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file path, e.g. {option} {target / example}")
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path}: the file is not writable; choose another path")
    folder = _nearest_existing(target.absolute().parent)
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: {folder} is a file, so no folder can be made there; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {folder} (permission denied); choose another path")
    return target


def check_distinct(paths: dict[str, str | None]) -> None:
    """Refuse two output options naming the same file (the second write would replace the first)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if not path:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UsageError(f"{seen[resolved]} and {option} both name {path}; give each its own file")
        seen[resolved] = option


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
