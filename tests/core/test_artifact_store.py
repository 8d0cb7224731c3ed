"""The artifact store under concurrency and after killed builds (issue 13): N processes forcing
builds of one key all get a valid artifact, no error, and leave no ``.tmp``/``.old`` folders."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dk.artifacts import Artifact, BuiltModel, SourceInfo, build_artifact
from dk.specs import TensorSpec

NAME = "v1.0_store_default_8x8_fp32"
SOURCE = SourceInfo("onnx", "store.onnx", "0" * 64)


def build_one(out: Path, force: bool = True, payload: bytes = b"model bytes " * 1000) -> Artifact:
    def build(folder: Path) -> BuiltModel:
        (folder / f"{NAME}.onnx").write_bytes(payload)
        (folder / "weights.bin").write_bytes(payload[::-1])
        spec = TensorSpec("input", ("batch", 1, 8, 8))
        return BuiltModel([f"{NAME}.onnx", "weights.bin"], "onnx", "fp32", [spec], [spec])

    return build_artifact(plugin="store", out_dir=out, name=NAME, source=SOURCE, build_options={"k": 1},
                          tool_versions={}, model_meta={"name": "store"}, build=build, force=force)


def hammer(out: str, builds: int, barrier, errors) -> None:
    """Force ``builds`` builds of one key and check every returned artifact; report failures."""
    barrier.wait()
    for i in range(builds):
        try:
            artifact = build_one(Path(out))
            assert artifact.path == Path(out) / "store" / NAME, artifact.path
            Artifact.load(artifact.path).verify()  # the folder at the final path is whole, now
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent
            errors.put(f"build {i} in pid {os.getpid()}: {type(exc).__name__}: {exc}")


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "store").iterdir() if p.name != NAME)


def test_concurrent_forced_builds_of_one_key_all_return_valid_artifacts_and_leave_nothing(tmp_path):
    writers, builds = 4, 15
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    barrier, errors = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=hammer, args=(str(tmp_path), builds, barrier, errors)) for _ in range(writers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=300)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert [p.exitcode for p in procs] == [0] * writers, "a writer process crashed"
    assert failures == [], f"{len(failures)} of {writers * builds} forced builds failed: {failures[:5]}"
    assert leftovers(tmp_path) == [], f"builds left {leftovers(tmp_path)}"
    Artifact.load(tmp_path / "store" / NAME).verify()


def test_waiting_writer_reuses_the_artifact_the_other_built(tmp_path):
    first = build_one(tmp_path, force=False)
    again = build_one(tmp_path, force=False)
    assert (first.reused, again.reused) == (False, True)


KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    import test_artifact_store as t
    from dk.artifacts import build_artifact, BuiltModel

    def build(folder):
        (folder / "half.onnx").write_bytes(b"half")
        print("building", flush=True)
        sys.stdin.read()  # blocks until killed
        return None

    build_artifact(plugin="store", out_dir=Path(sys.argv[1]), name=t.NAME, source=t.SOURCE, build_options={},
                   tool_versions={}, model_meta={}, build=build, force=True)
""")


def test_a_build_killed_with_sigkill_leaves_folders_that_the_next_build_removes(tmp_path):
    build_one(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(tmp_path), str(Path(__file__).parent)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "building", proc.stderr.read()
        assert [n.split("-")[0] for n in leftovers(tmp_path)] == [f".{NAME}.lock", f".{NAME}.tmp"], (
            f"the build should be caught holding its lock and .tmp folder: {leftovers(tmp_path)}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    stale = tmp_path / "store" / f".{NAME}.old-deadbeef"  # as the pre-lock two-rename replace left them
    (stale / "sub").mkdir(parents=True)
    assert len(leftovers(tmp_path)) == 3

    artifact = build_one(tmp_path)  # the lock died with the killed process: this build does not wait

    assert leftovers(tmp_path) == []
    Artifact.load(artifact.path).verify()


def failing_build(folder: Path) -> BuiltModel:
    raise RuntimeError("model file is corrupt")


def test_a_failed_build_keeps_the_other_artifacts_of_its_plugin(tmp_path):
    built = build_one(tmp_path)

    with pytest.raises(RuntimeError, match="model file is corrupt"):
        build_artifact(plugin="store", out_dir=tmp_path, name="v1.0_other_default_8x8_fp32", source=SOURCE,
                       build_options={}, tool_versions={}, model_meta={}, build=failing_build)

    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [NAME]
    Artifact.load(built.path).verify()
