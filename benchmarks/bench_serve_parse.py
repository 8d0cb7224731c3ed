"""Body checks stay linear: time of ``decode_request``'s checks on worst-case bodies vs their size,
and how long ``/v2/health/live`` takes while the largest of them is being parsed.

    python benchmarks/bench_serve_parse.py

Bodies: many ``[`` then an unclosed string of escaped quotes (quadratic for a backtracking string
regex: the issue-13 body), a shallow one that is all escaped quotes, and a valid JSON tensor.
Goal: time per MiB flat across sizes (linear), health answered within 50 ms meanwhile.
Results: results/bench_serve_parse.json and a line under ``## serve`` in README.md.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from _cli import parse_args  # noqa: E402
from bench_serve_load import record, start_worker, stop_worker  # noqa: E402
from _machine import machine  # noqa: E402
from dk.serve.limits import HttpError  # noqa: E402
from dk.serve.tensors import decode_request  # noqa: E402
from tests.core.test_serve_support import LinearEngine  # noqa: E402

SIZES = [48_000, 1 << 20, 4 << 20, 16 << 20, 64 << 20]


def bodies(size: int) -> dict[str, bytes]:
    deep = b'{"inputs": ' + b"[" * (size // 2) + b'"'
    shallow = b'{"inputs": [[[["'
    values = np.random.default_rng(0).random(size // 20).round(6).tolist()
    tensor = json.dumps({"inputs": [{"name": "input", "shape": [len(values), 1, 8, 8], "datatype": "FP32",
                                     "data": values}]}).encode()
    return {"deep_then_escaped_quotes": deep + b'\\"' * ((size - len(deep)) // 2),
            "shallow_escaped_quotes": shallow + b'\\"' * ((size - len(shallow)) // 2),
            "json_tensor": tensor[:size]}


def parse_seconds(body: bytes) -> float:
    specs = LinearEngine().inputs
    times = []
    for _ in range(3):
        start = time.perf_counter()
        try:
            decode_request(body, None, specs, max_depth=64, max_bytes=1 << 30)
        except HttpError:
            pass
        times.append(time.perf_counter() - start)
    return min(times)


def health_while_parsing(body: bytes) -> dict:
    """Liveness probes (this process) on one connection while another sends ``body`` to a
    ``dk serve`` worker in its own process, as a Kubernetes probe would."""
    proc, url = start_worker("--plugin", "ort", "--max-body", str(len(body) + 1024))
    host, port = url.split("//")[1].split(":")
    latencies: list[tuple[float, float]] = []
    try:
        done = threading.Event()
        request = f"POST /v2/models/digitsnet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()

        def attack() -> None:
            with socket.create_connection((host, int(port)), timeout=600) as sock:
                sock.sendall(request)
                sock.sendall(body)
                answers.append(sock.recv(65536))
            done.set()

        answers: list[bytes] = []
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        for method, path, payload in (("GET", "/v2/health/live", None), ("POST", "/v2/models/digitsnet/infer", b"[[")):
            conn.request(method, path, body=payload)  # warm: the first request of each kind imports lazily
            conn.getresponse().read()
        thread = threading.Thread(target=attack)
        start = time.perf_counter()
        thread.start()
        while not done.is_set():
            t = time.perf_counter()
            conn.request("GET", "/v2/health/live")
            conn.getresponse().read()
            latencies.append((t - start, (time.perf_counter() - t) * 1e3))
        attack_s = time.perf_counter() - start
        thread.join()
        conn.close()
    finally:
        stop_worker(proc)
    worst_at, worst = max(latencies, key=lambda p: p[1])
    return {"body_bytes": len(body), "attack_request_s": attack_s, "answer": answers[0].split(b"\r\n")[0].decode(),
            "probes": len(latencies), "health_p50_ms": statistics.median(p[1] for p in latencies),
            "health_p99_ms": float(np.percentile([p[1] for p in latencies], 99)), "health_max_ms": worst,
            "max_at_s": worst_at}


def main(health_only: bool = False) -> None:
    rows = []
    if health_only:
        print(health_while_parsing(bodies(SIZES[-1])["deep_then_escaped_quotes"]))
        return
    for size in SIZES:
        for kind, body in bodies(size).items():
            seconds = parse_seconds(body)
            rows.append({"kind": kind, "bytes": len(body), "seconds": seconds,
                         "ms_per_mib": seconds * 1e3 / (len(body) / (1 << 20))})
            print(rows[-1], flush=True)
    health = health_while_parsing(bodies(SIZES[-1])["deep_then_escaped_quotes"])
    print(health)
    per_kind = {}
    for kind in {r["kind"] for r in rows}:
        mine = [r for r in rows if r["kind"] == kind and r["bytes"] >= (1 << 20)]
        per_kind[kind] = {"ms_per_mib_min": min(r["ms_per_mib"] for r in mine),
                          "ms_per_mib_max": max(r["ms_per_mib"] for r in mine)}
    result = {"benchmark": "bench_serve_parse", "machine": machine(), "rows": rows, "per_kind": per_kind,
              "health_while_parsing": health, "goal": {"health_max_ms": 50},
              "pass": health["health_max_ms"] <= 50}
    w = per_kind["deep_then_escaped_quotes"]
    line = (f"{machine()['cpu']}, load {machine()['load_average'][0]:.1f}: issue-13 worst-case body (`[`s then an "
            f"unclosed string of escaped quotes) checked in {w['ms_per_mib_min']:.0f}-{w['ms_per_mib_max']:.0f} ms/MiB "
            f"from 1 to 64 MiB (linear; 48 KB: {rows[0]['seconds'] * 1e3:.2f} ms, was ~10 s); valid JSON tensor "
            f"{per_kind['json_tensor']['ms_per_mib_min']:.0f}-{per_kind['json_tensor']['ms_per_mib_max']:.0f} ms/MiB; "
            f"/v2/health/live while a 64 MiB worst-case body is sent and refused: "
            f"p50 {health['health_p50_ms']:.1f} ms, "
            f"max {health['health_max_ms']:.1f} ms over {health['probes']} probes (goal <= 50 ms)")
    record("bench_serve_parse", result, line)
    print(line)


if __name__ == "__main__":
    main(parse_args(__doc__, ("--health-only", "only the liveness probes during the largest worst-case body")).health_only)
