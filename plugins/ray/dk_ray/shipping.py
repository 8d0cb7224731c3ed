"""Moving artifacts and input files between nodes as bytes (through Ray's object store).

An artifact folder travels as an uncompressed tar; on arrival it is unpacked under the node's
cache in a folder named by its cache key, atomically (temp folder, then rename), and reused by
every later cell on that node that needs the same artifact. dk verifies the manifest's sha256 of
every file before an engine loads it, so a damaged transfer is refused, not benchmarked.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

from dk.artifacts import Artifact


def node_cache() -> Path:
    """Where this node keeps built and received artifacts (``DK_RAY_CACHE`` or the temp folder)."""
    return Path(os.environ.get("DK_RAY_CACHE") or Path(tempfile.gettempdir()) / "dk-ray")


def pack_dir(folder: Path) -> bytes:
    """The folder's files as tar bytes, names relative to the folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack_artifact(payload: bytes, cache_key: str, relative: str, cache: Path | None = None) -> Artifact:
    """The artifact in ``payload``, unpacked once per node under ``cache/shipped/KEY/relative``."""
    final = (cache or node_cache()) / "shipped" / cache_key[:32] / relative
    if not final.is_dir():
        _extract(payload, final)  # another worker of this node may win the race: then theirs is used
    artifact = _matching(final, cache_key)
    if artifact is None:  # a damaged or foreign folder in the way: unpack beside it
        final = final.with_name(f"{final.name}-{uuid.uuid4().hex[:8]}")
        _extract(payload, final)
        artifact = Artifact.load(final)
    return artifact


def _matching(folder: Path, cache_key: str) -> Artifact | None:
    try:
        artifact = Artifact.load(folder)
    except Exception:
        return None
    return artifact if artifact.manifest.get("cache_key") == cache_key else None


def place_file(payload: bytes, name: str, cache: Path | None = None) -> Path:
    """A shipped input file (model, weights, data) saved once per node by content hash."""
    digest = hashlib.sha256(payload).hexdigest()[:32]
    final = (cache or node_cache()) / "inputs" / digest / Path(name).name
    if final.is_file() and final.stat().st_size == len(payload):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(payload)
    os.replace(tmp, final)
    return final


def _extract(payload: bytes, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, '..' and links out of tmp
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # unpacked meanwhile by another worker
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
