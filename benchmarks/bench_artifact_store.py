"""The artifact store under N concurrent writers of one key (issue 13).

    python benchmarks/bench_artifact_store.py [--writers 8] [--builds 150]

Every writer process forces ``--builds`` builds of the same artifact (two small files) through
``dk.artifacts.build_artifact`` at once; the script counts failed calls, returned artifacts that do
not verify, and ``.tmp``/``.old``/``.lock`` entries left beside the artifact, and records them with
the wall time in results/bench_artifact_store.json. Target: 0 failures, 0 leftovers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from _machine import machine

from dk.artifacts import Artifact, BuiltModel, SourceInfo, build_artifact
from dk.specs import TensorSpec

NAME = "v1.0_store_default_8x8_fp32"


def build_one(out: Path) -> Artifact:
    def build(folder: Path) -> BuiltModel:
        (folder / f"{NAME}.onnx").write_bytes(b"model bytes " * 1000)
        (folder / "weights.bin").write_bytes(b"weights " * 1000)
        spec = TensorSpec("input", ("batch", 1, 8, 8))
        return BuiltModel([f"{NAME}.onnx", "weights.bin"], "onnx", "fp32", [spec], [spec])

    return build_artifact(plugin="store", out_dir=out, name=NAME, source=SourceInfo("onnx", "m.onnx", "0" * 64),
                          build_options={}, tool_versions={}, model_meta={}, build=build, force=True)


def writer(out: str, builds: int, barrier, results) -> None:
    barrier.wait()
    failed, invalid = [], 0
    for _ in range(builds):
        try:
            artifact = build_one(Path(out))
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            failed.append(f"{type(exc).__name__}: {exc}")
            continue
        try:
            Artifact.load(artifact.path).verify()
        except Exception:  # noqa: BLE001
            invalid += 1
    results.put((failed, invalid))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--builds", type=int, default=150)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as out:
        barrier, results = ctx.Barrier(args.writers + 1), ctx.Queue()
        procs = [ctx.Process(target=writer, args=(out, args.builds, barrier, results)) for _ in range(args.writers)]
        for p in procs:
            p.start()
        barrier.wait()
        start = time.perf_counter()
        outcomes = [results.get() for _ in procs]
        wall = time.perf_counter() - start
        for p in procs:
            p.join()
        leftovers = sorted(p.name for p in (Path(out) / "store").iterdir() if p.name != NAME)
    failures = [f for failed, _ in outcomes for f in failed]
    calls = args.writers * args.builds
    result = {
        "writers": args.writers,
        "builds_per_writer": args.builds,
        "calls": calls,
        "failed_calls": len(failures),
        "first_failures": failures[:5],
        "returned_artifacts_not_verifying": sum(invalid for _, invalid in outcomes),
        "leftovers": leftovers,
        "wall_s": round(wall, 2),
        "builds_per_s": round(calls / wall, 1),
        "machine": machine(),
    }
    out_file = Path(__file__).parent / "results" / "bench_artifact_store.json"
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
