"""Artifacts: a folder with the model/engine file(s) and a ``dk.json`` manifest.

Every artifact is built in a temporary sibling folder and renamed into place, so an interrupted
build never leaves a half-written artifact at the final path. Before building, the cache key
(source bytes, build options, library versions, plugin) is compared with the manifest already at
the final path; when it matches and the files are intact the artifact is reused.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import hashlib
import json
import os
import platform
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs

from dk.errors import ModelError
from dk.manifest import check_member_path, validate_manifest
from dk.specs import TensorSpec

MANIFEST_NAME = "dk.json"
MANIFEST_SCHEMA = "dk.artifact/1"


@attrs.define
class SourceInfo:
    """Where an artifact came from: the source kind, its location and the sha256 of its bytes.

    :ivar tag: The short digest that names the source in artifact folders (``dk.sources.source_tag``:
        its kind and resolved path), so two models with one file name get two folders; ``""`` for
        the embedded default model, whose artifact names carry none.
    """

    kind: str
    location: str
    sha256: str
    tag: str = ""

    def to_json(self) -> dict[str, str]:
        data = attrs.asdict(self)
        if not self.tag:
            del data["tag"]
        return data


@attrs.define
class BuiltModel:
    """What a plugin's build function returns after writing its files into the build folder.

    :ivar files: File names relative to the build folder; the first is the main model file.
    """

    files: list[str]
    format: str
    precision: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class Artifact:
    """A built artifact on disk. ``manifest`` is the parsed ``dk.json``."""

    path: Path
    manifest: dict[str, Any]
    reused: bool = False

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def format(self) -> str:
        return self.manifest["format"]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def plugin(self) -> str:
        return self.manifest["plugin"]

    @property
    def model_file(self) -> Path:
        return self.path / self.manifest["files"][0]["name"]

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(d) for d in self.manifest["inputs"]]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(d) for d in self.manifest["outputs"]]

    @property
    def model_meta(self) -> dict[str, Any]:
        """The ``model`` section: task, labels, pre-processing, held-out accuracy if known."""
        return self.manifest.get("model", {})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Artifact":
        """Read an artifact folder, or raise :class:`ModelError` saying what is wrong with it."""
        path = Path(path)
        manifest_path = path / MANIFEST_NAME
        if not path.is_dir():
            raise ModelError(f"artifact folder {path} does not exist; run 'dk run export' first")
        if not manifest_path.is_file():
            raise ModelError(f"{path} is not a dk artifact: it has no {MANIFEST_NAME}")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{manifest_path} is not valid JSON ({exc}); re-export the artifact") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
            raise ModelError(f"{manifest_path} is not a {MANIFEST_SCHEMA} manifest; re-export the artifact")
        validate_manifest(manifest, path)
        artifact = cls(path=path, manifest=manifest)
        for entry in manifest["files"]:
            if not (path / entry["name"]).is_file():
                raise ModelError(f"artifact {path} is missing its file {entry['name']}; re-export it")
        return artifact

    def verify(self) -> None:
        """Raise :class:`ModelError` when a file differs from what the manifest recorded
        (truncated, corrupted or replaced since the build)."""
        for entry in self.manifest.get("files", []):
            file = check_member_path(self.path, entry["name"])
            if not file.is_file():
                raise ModelError(f"artifact {self.path} is missing its file {entry['name']}; re-export it")
            if file.stat().st_size != entry["size"] or sha256_file(file) != entry["sha256"]:
                raise ModelError(
                    f"artifact file {file} is corrupt (size or sha256 differs from dk.json); re-export it "
                    "with --force"
                )

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "reused": self.reused, **self.manifest}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def artifact_name(
    model: str,
    input_hw: tuple[int, int] | None,
    precision: str,
    *,
    version: str = "1.0",
    variant: str = "default",
    suffix: str = "",
    source_tag: str = "",
) -> str:
    """Name by the Bonseyes convention: ``v1.0_resnet18_default_224x224_fp16[_dla_disabled]``;
    a ``source_tag`` (:attr:`SourceInfo.tag`) joins the model field: ``v1.0_net-1f2e3d4c_default_...``."""
    size = f"{input_hw[0]}x{input_hw[1]}" if input_hw else "any"
    model = f"{model}-{source_tag}" if source_tag else model
    name = f"v{version}_{model}_{variant}_{size}_{precision}"
    return f"{name}_{suffix}" if suffix else name


def model_artifact_name(model: str, meta: Mapping[str, Any], inputs: list[TensorSpec], precision: str,
                        suffix: str = "", source: SourceInfo | None = None) -> str:
    """:func:`artifact_name` with the size of the first input, the version and variant that the
    model's manifest section declares (``1.0`` and ``default`` when it does not), the batch
    tag of :func:`batch_tag` before ``suffix``, so static, dynamic and bounded exports of one
    model get distinct folders, and the tag of ``source``, so that models from different files
    or factories that share a name do too."""
    tag = batch_tag(inputs[0]) if inputs else ""
    return artifact_name(
        model,
        input_hw(inputs[0]) if inputs else None,
        precision,
        version=str(meta.get("version", "1.0")),
        variant=str(meta.get("variant", "default")),
        suffix="_".join(part for part in (tag, suffix) if part),
        source_tag=source.tag if source is not None else "",
    )


def float_nodes_suffix(float_nodes: Sequence[str]) -> str:
    """The name suffix of an int8 artifact with ``float_nodes`` kept in float: ``float2-1a2b3c4d``
    (how many, and 8 hex digits of sha256 over the sorted names), so that a mixed-precision build
    gets a folder of its own beside the plain int8 one and beside other choices of float nodes;
    ``""`` when there are none (plain names stay as they were)."""
    names = sorted(set(float_nodes))
    if not names:
        return ""
    return f"float{len(names)}-{sha256_json(names)[:8]}"


def batch_tag(spec: TensorSpec) -> str:
    """How the first input's batch axis is fixed: ``""`` when dynamic (the common case keeps the
    plain name), ``batch4`` when static, ``batch1-8`` when bounded by min/max shapes, ``batch-8``
    or ``batch2-`` when only one bound is given."""
    if not spec.shape:
        return ""
    batch = spec.shape[0]
    if isinstance(batch, int):
        return f"batch{batch}"
    if spec.min_shape or spec.max_shape:
        low = spec.min_shape[0] if spec.min_shape else ""
        high = spec.max_shape[0] if spec.max_shape else ""
        return f"batch{low}-{high}"
    return ""


def input_hw(spec: TensorSpec) -> tuple[int, int] | None:
    """Height and width of a 4-D NCHW input when both are fixed, else ``None``."""
    if len(spec.shape) == 4 and all(isinstance(d, int) for d in spec.shape[2:]):
        return int(spec.shape[2]), int(spec.shape[3])
    return None


def platform_info() -> dict[str, str]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def cache_key(plugin: str, source_sha256: str, build_options: Mapping[str, Any], tool_versions: Mapping[str, str]) -> str:
    from dk import __version__

    return sha256_json(
        {"plugin": plugin, "source": source_sha256, "options": build_options, "tools": tool_versions, "dk": __version__}
    )


def _reusable(final: Path, key: str, model_meta: Mapping[str, Any]) -> Artifact | None:
    try:
        artifact = Artifact.load(final)
    except ModelError:
        return None
    if artifact.manifest.get("cache_key") != key or artifact.model_meta != model_meta:
        return None
    try:
        artifact.verify()
    except (ModelError, OSError):  # OSError: a concurrent build swapped the folder while we read it
        return None
    artifact.reused = True
    return artifact


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing what was there.

    Where the OS can swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``) readers
    never see ``final`` missing; elsewhere the old folder is renamed aside first. Callers hold the
    artifact's build lock, so no other writer renames ``final`` meanwhile."""
    if not final.exists():
        os.replace(tmp, final)
        return
    if _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old artifact
        return
    trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def build_lock(final: Path) -> Iterator[None]:
    """Hold the exclusive lock of the artifact folder ``final`` (the file ``.NAME.lock`` beside
    it), so that concurrent builds of one artifact, in threads or processes, take turns.

    The holder deletes the lock file before releasing it; a waiter that then finds its locked
    file gone (or replaced) opens the new one, so the lock file never outlives the builds. The OS
    releases the lock of a killed build; its file is removed by the next build."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; builds still replace atomically
        yield
        return
    lock = final.with_name(f".{final.name}.lock")
    while True:
        fd = _open_lock_file(lock)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed this file: lock the current one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)  # releases the lock


def _open_lock_file(lock: Path) -> int:
    """Open (creating) ``lock``; its folder is made again when a failed build of another artifact
    removed it, empty, between our mkdir and this open."""
    while True:
        try:
            return os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:
            lock.parent.mkdir(parents=True, exist_ok=True)


def remove_leftovers(final: Path) -> list[str]:
    """Delete the ``.NAME.tmp-*`` and ``.NAME.old-*`` folders that killed builds of ``final`` left
    behind; call only under :func:`build_lock`, when no live build of it has one. Returns their names."""
    removed = []
    for prefix in (f".{final.name}.tmp-", f".{final.name}.old-"):
        for leftover in final.parent.glob(glob.escape(prefix) + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover.name)
    return removed


def build_artifact(
    *,
    plugin: str,
    out_dir: Path,
    name: str,
    source: SourceInfo,
    build_options: Mapping[str, Any],
    tool_versions: Mapping[str, str],
    model_meta: Mapping[str, Any],
    build: Callable[[Path], BuiltModel],
    force: bool = False,
) -> Artifact:
    """Build (or reuse) the artifact ``out_dir/plugin/name``.

    Safe under concurrency: builds of one artifact take turns under :func:`build_lock`, a build
    waiting for another reuses its result when the cache key matches (unless ``force``), and
    folders left by killed builds are removed.

    :param build: Writes the model file(s) into the folder it is given and describes them.
    """
    key = cache_key(plugin, source.sha256, build_options, tool_versions)
    final = Path(out_dir) / plugin / name
    check_not_own_source(source, final)
    # declared model metadata (labels, pre-processing) must reach the manifest: reuse only when it matches
    meta = json.loads(json.dumps(dict(model_meta), default=str))
    if not force and (cached := _reusable(final, key, meta)) is not None:
        return cached
    new_folders = missing_folders(final.parent)
    try:
        with build_lock(final):
            if not force and (cached := _reusable(final, key, meta)) is not None:
                return cached  # built by the writer we waited for
            remove_leftovers(final)
            return _build_into(final, name, plugin, key, source, build_options, tool_versions, model_meta, build)
    except BaseException:
        remove_empty_folders(new_folders)
        raise


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is still empty: a failed build leaves no
    ``dk-artifacts/<plugin>/`` behind that it made; one another build has written to stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another build's artifact or lock) or already gone
            return


def check_not_own_source(source: SourceInfo, final: Path) -> None:
    """Refuse to rebuild an artifact folder from itself (``--model`` naming the very artifact the
    build would replace): the build would overwrite its own source and record itself as it."""
    if source.kind == "artifact" and Path(source.location).resolve() == final.resolve():
        raise ModelError(f"--model {source.location} is the artifact this build would write (same plugin, model, "
                         f"size and precision); use it as it is with --artifact {source.location}, or give --model "
                         "the original model")


def _build_into(final: Path, name: str, plugin: str, key: str, source: SourceInfo,
                build_options: Mapping[str, Any], tool_versions: Mapping[str, str],
                model_meta: Mapping[str, Any], build: Callable[[Path], BuiltModel]) -> Artifact:
    tmp = final.with_name(f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        built = build(tmp)
        from dk.model_meta import check_against_outputs

        check_against_outputs(model_meta, built.outputs)
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "name": name,
            "plugin": plugin,
            "format": built.format,
            "precision": built.precision,
            "files": [
                {"name": f, "sha256": sha256_file(tmp / f), "size": (tmp / f).stat().st_size} for f in built.files
            ],
            "inputs": [s.to_json() for s in built.inputs],
            "outputs": [s.to_json() for s in built.outputs],
            "source": source.to_json(),
            "options": dict(build_options),
            "cache_key": key,
            "tool_versions": dict(tool_versions),
            "platform": platform_info(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": dict(model_meta),
            **({"extra": built.extra} if built.extra else {}),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Artifact(path=final, manifest=manifest)
