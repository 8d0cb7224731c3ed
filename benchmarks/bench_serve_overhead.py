"""What serving costs: per-request overhead of ``POST /v2/.../infer`` over a local ``Engine.infer``
(default model), and served vs local throughput with 8 concurrent clients (ResNet-18-sized CNN).

    python benchmarks/bench_serve_overhead.py

Targets: overhead p50 <= 1.5 ms on loopback; served throughput >= 0.85x local at the same batch
size. The worker is ``dk serve --plugin ort`` in its own process; clients are the lpdnn plugin's
RemoteEngine (binary tensors, keep-alive). Results: results/bench_serve_overhead.json, README line.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_serve_load import machine, record, start_worker, stop_worker  # noqa: E402
from dk import api  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import ExportRequest  # noqa: E402


def remote_engine(url: str, out: Path, binary: bool = True):
    artifact = api.export("lpdnn", ExportRequest(source=parse_model_arg(None), out_dir=out, options={"url": url},
                                                 force=True))
    return api.load_engine("lpdnn", artifact, options={"binary": "1" if binary else "0"})


def per_call_ms(fn, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def overhead(out: Path, rounds: int = 20, calls: int = 100) -> dict:
    """Interleaved rounds of local and remote calls on the same input; p50 of each and of the difference."""
    local_artifact = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=out))
    proc, url = start_worker("--plugin", "ort", "--artifact", str(local_artifact.path))
    try:
        x = {"input": np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)}
        with api.load_engine("ort", local_artifact) as local, remote_engine(url, out / "b") as binary, \
                remote_engine(url, out / "j", binary=False) as as_json:
            np.testing.assert_array_equal(local.infer(x)["logits"], binary.infer(x)["logits"])
            for engine in (local, binary, as_json):
                per_call_ms(lambda e=engine: e.infer(x), 200)  # warm-up
            samples = {"local": [], "binary": [], "json": []}
            for _ in range(rounds):
                for name, engine in (("local", local), ("binary", binary), ("json", as_json)):
                    samples[name] += per_call_ms(lambda e=engine: e.infer(x), calls)
            breakdown = binary.timings()
    finally:
        stop_worker(proc)
    p50 = {k: statistics.median(v) for k, v in samples.items()}
    return {"calls_each": rounds * calls, "p50_ms": p50,
            "p99_ms": {k: float(np.percentile(v, 99)) for k, v in samples.items()},
            "overhead_p50_ms": {"binary": p50["binary"] - p50["local"], "json": p50["json"] - p50["local"]},
            "remote_breakdown_binary": breakdown}


def resnet_onnx(folder: Path) -> Path:
    import torch
    from dk_torch.models import resnet18_like

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "resnet18-like.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(resnet18_like(0), (torch.zeros(1, 3, 224, 224),), str(path), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return path


def throughput(out: Path, batch: int = 1, clients: int = 8, seconds: float = 20.0) -> dict:
    """Local: one loop of Engine.infer. Served: ``clients`` threads, each its own keep-alive connection."""
    onnx_path = resnet_onnx(out)
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(str(onnx_path)), out_dir=out))
    x = {"input": np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)}
    with api.load_engine("ort", artifact) as local:
        per_call_ms(lambda: local.infer(x), 10)
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            local.infer(x)
            n += 1
        local_tput = n * batch / (time.perf_counter() - start)
    result = {"batch": batch, "clients": clients, "seconds": seconds, "local_samples_per_s": local_tput}
    for label, extra in (("served", []), ("served_dynamic_batching", ["--max-batch", "8", "--max-delay-ms", "2"])):
        proc, url = start_worker("--plugin", "ort", "--artifact", str(artifact.path), *extra)
        try:
            artifact_remote = api.export("lpdnn", ExportRequest(source=parse_model_arg(None), out_dir=out / label,
                                                                options={"url": url}, force=True))
            counts = [0] * clients
            stop = threading.Event()

            def client(i: int) -> None:
                with api.load_engine("lpdnn", artifact_remote) as engine:
                    engine.infer(x)
                    barrier.wait()
                    while not stop.is_set():
                        engine.infer(x)
                        counts[i] += 1

            barrier = threading.Barrier(clients + 1)
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            barrier.wait()
            start = time.perf_counter()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            stop_worker(proc)
        result[f"{label}_samples_per_s"] = sum(counts) * batch / elapsed
        result[f"{label}_ratio"] = result[f"{label}_samples_per_s"] / local_tput
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small = overhead(Path(tmp) / "small")
        print(json.dumps(small, indent=2), flush=True)
        big = throughput(Path(tmp) / "big")
    result = {"benchmark": "bench_serve_overhead", "machine": machine(), "default_model": small,
              "resnet18_like": big, "targets": {"overhead_p50_ms": 1.5, "throughput_ratio": 0.85},
              "pass": small["overhead_p50_ms"]["binary"] <= 1.5 and big["served_ratio"] >= 0.85}
    o, p = small["overhead_p50_ms"], small["p50_ms"]
    line = (f"default model, batch 1: local Engine.infer p50 {p['local']:.3f} ms, via `dk serve` /v2 infer "
            f"{p['binary']:.3f} ms binary / {p['json']:.3f} ms JSON: overhead p50 {o['binary']:.3f} ms binary, "
            f"{o['json']:.3f} ms JSON (target <= 1.5; {small['calls_each']} interleaved calls each); ResNet-18-sized, "
            f"batch 1, 8 concurrent clients: served {big['served_samples_per_s']:.1f} vs local "
            f"{big['local_samples_per_s']:.1f} samples/s = {big['served_ratio']:.2f}x (target >= 0.85), with "
            f"--max-batch 8 {big['served_dynamic_batching_samples_per_s']:.1f} samples/s = "
            f"{big['served_dynamic_batching_ratio']:.2f}x")
    record("bench_serve_overhead", result, line)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
