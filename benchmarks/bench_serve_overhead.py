"""What serving costs: per-request overhead of ``POST /v2/models/NAME/infer`` over a direct
``session.run`` in the client process, and served vs local throughput with 8 concurrent clients,
for the tiny default model and the ResNet-18-sized CNN.

    python benchmarks/bench_serve_overhead.py            # about 4 minutes on 2 cores
    python benchmarks/bench_serve_overhead.py --profile  # also: the worker's per-stage trace (DK_SERVE_TRACE)

Both sides use ONNX Runtime with 1 intra-op thread and no spinning. The worker is
``dk serve --plugin ort`` in its own process on loopback; the client is a lean keep-alive socket
client (request bytes prepared once, the tensor sent from its own memory, TCP_NODELAY) so that
the figure is the server's cost, not Python's http.client.

- overhead: calls interleaved one by one (direct, binary, JSON), in rounds; per round the median
  of the paired differences (served - direct); reported: the median over rounds and its range.
  Also ``binary_minus_own_engine``: each served round trip minus the ``infer_ms`` the worker
  measured around its own ``Engine.infer`` for that request, i.e. what serving adds, without the
  call-to-call variance of the engine itself (which dominates on a loaded machine). And
  ``bare_floor``: the same client against ``_bare_oip_server.py`` (a raw asyncio protocol with
  dk's event loop and engine-thread hop, nothing else), interleaved in the same calls: the floor
  of a Python server with a thread hop on this machine, so that what dk adds above it is visible.
- throughput: 8 local threads calling ``Engine.infer`` on one engine vs 8 client threads against
  the worker (``--concurrency 8``), alternated in rounds; the ratio is per round.

Targets (issue 21): ResNet-18 binary overhead p50 <= 1.5 ms, 8-client ratio >= 0.95. Results:
results/bench_serve_overhead.json and a line under ``## serve`` in README.md.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _cli import parse_args  # noqa: E402
from bench_serve_load import record, start_worker, stop_worker  # noqa: E402
from _machine import machine  # noqa: E402
from dk import api  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import ExportRequest  # noqa: E402

ORT_OPTIONS = {"threads": "1", "spin": "0"}
CLI_OPTIONS = [a for k, v in ORT_OPTIONS.items() for a in ("-o", f"{k}={v}")]


class LeanClient:
    """One keep-alive connection that sends a prepared OIP request and parses the answer."""

    def __init__(self, url: str, model: str):
        host, port = url.split("//")[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.path = f"/v2/models/{model}/infer"
        self.buffer = bytearray()

    def binary_request(self, name: str, x: np.ndarray, output: str) -> list[Any]:
        header = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "outputs": [{"name": output, "parameters": {"binary_data": True}}]}).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                f"Inference-Header-Content-Length: {len(header)}\r\nContent-Length: {len(header) + x.nbytes}\r\n\r\n")
        return [head.encode() + header, memoryview(np.ascontiguousarray(x)).cast("B")]

    def json_request(self, name: str, x: np.ndarray) -> list[Any]:
        body = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                       "data": x.ravel().tolist()}]}).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return [head + body]

    def send(self, parts: list[Any]) -> tuple[dict, np.ndarray | None]:
        """One request; (JSON header of the answer, the first binary output or None)."""
        send_all(self.sock, parts)
        buf = self.buffer
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self.sock.recv(1 << 20)
        head = bytes(buf[:end]).decode("latin-1").lower()
        lines = head.split("\r\n")
        fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(fields["content-length"])
        split = int(fields.get("inference-header-content-length", length))
        while len(buf) < end + 4 + length:
            buf += self.sock.recv(1 << 20)
        body = bytes(buf[end + 4: end + 4 + length])
        del buf[: end + 4 + length]
        if not head.startswith("http/1.1 200"):
            raise RuntimeError(f"worker answered {head.splitlines()[0]}: {body[:200]!r}")
        doc = json.loads(body[:split])
        return doc, (np.frombuffer(body, np.float32, offset=split) if split < length else None)

    def close(self) -> None:
        self.sock.close()


def send_all(sock: socket.socket, parts: list[Any]) -> None:
    """``sendmsg`` until every byte of ``parts`` is sent (one send may take only part of them)."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def overhead(artifact: Any, x: np.ndarray, rounds: int, calls: int, json_calls: int, profile: bool) -> dict:
    """Direct session.run vs served binary vs served JSON, interleaved call by call."""
    traces: list[dict] = []
    proc, url = start_worker("--plugin", "ort", "--artifact", str(artifact.path), *CLI_OPTIONS)
    bare, bare_url = start_bare(artifact.model_file)
    try:
        with api.load_engine("ort", artifact, options=ORT_OPTIONS) as local:
            name, output = local.inputs[0].name, local.outputs[0].name
            session = local.session
            client = LeanClient(url, metadata_name(url))
            floor_client = LeanClient(bare_url, "bare")
            binary, as_json = client.binary_request(name, x, output), client.json_request(name, x)
            floor_binary = floor_client.binary_request(name, x, output)
            expected = session.run([output], {name: x})[0]
            for c, request in ((client, binary), (floor_client, floor_binary)):
                doc, got = c.send(request)
                np.testing.assert_array_equal(got.reshape(expected.shape), expected)  # same bits as the direct call
            direct = lambda: session.run([output], {name: x})  # noqa: E731
            served = lambda: client.send(binary)  # noqa: E731
            served_json = lambda: client.send(as_json)  # noqa: E731
            floor = lambda: floor_client.send(floor_binary)  # noqa: E731
            for fn in (direct, served, served_json, floor):
                for _ in range(5):
                    fn()
            per_round: dict[str, list[float]] = {"binary": [], "json": [], "binary_minus_own_engine": [],
                                                 "bare_floor": []}
            p50: dict[str, list[float]] = {"direct": [], "binary": [], "json": []}
            for _ in range(rounds):
                d, b, paired, own, floors = [], [], [], [], []
                for _ in range(calls):
                    t_direct = _time(direct)
                    start = time.perf_counter()
                    doc, _ = served()
                    t_binary = (time.perf_counter() - start) * 1e3
                    d.append(t_direct)
                    b.append(t_binary)
                    paired.append(t_binary - t_direct)
                    own.append(t_binary - doc["parameters"]["infer_ms"])
                    floors.append(_time(floor) - _time(direct))
                jd, j, jpaired = [], [], []
                for _ in range(json_calls):
                    t_direct, t_json = _time(direct), _time(served_json)
                    jd.append(t_direct)
                    j.append(t_json)
                    jpaired.append(t_json - t_direct)
                per_round["binary"].append(statistics.median(paired))
                per_round["binary_minus_own_engine"].append(statistics.median(own))
                per_round["bare_floor"].append(statistics.median(floors))
                per_round["json"].append(statistics.median(jpaired))
                p50["direct"].append(statistics.median(d))
                p50["binary"].append(statistics.median(b))
                p50["json"].append(statistics.median(j))
            client.close()
            floor_client.close()
    finally:
        stop_worker(proc)
        bare.kill()
        bare.wait()
    if profile:  # a worker of its own with DK_SERVE_TRACE=1, so that the figures above are untraced
        proc, url = start_worker("--plugin", "ort", "--artifact", str(artifact.path), *CLI_OPTIONS,
                                 env={"DK_SERVE_TRACE": "1"})
        try:
            client = LeanClient(url, metadata_name(url))
            for i in range(calls + 5):
                start = time.perf_counter()
                doc, _ = client.send(binary)
                total = (time.perf_counter() - start) * 1e3
                if i >= 5:
                    traces.append({**doc["parameters"].get("trace_ms", {}), "client_total": total,
                                   "server": doc["parameters"]["server_ms"]})
            client.close()
        finally:
            stop_worker(proc)

    def summary(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    result = {"rounds": rounds, "calls_per_round": calls, "json_calls_per_round": json_calls,
              "overhead_p50_ms": {k: summary(v) for k, v in per_round.items()},
              "p50_ms": {k: statistics.median(v) for k, v in p50.items()}, "request_bytes": {
                  "binary": sum(len(p) for p in binary), "json": len(as_json[0])}}
    if traces:
        keys = [k for k in traces[0]]
        result["profile_p50_ms"] = {k: statistics.median(t[k] for t in traces if k in t) for k in keys}
    return result


def start_bare(model: Path) -> tuple[subprocess.Popen, str]:
    """``_bare_oip_server.py`` on ``model`` in a subprocess; (process, base URL)."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_bare_oip_server.py"), str(model)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"the bare server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def metadata_name(url: str) -> str:
    import http.client

    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/v2")
    name = json.loads(conn.getresponse().read())["models"][0]
    conn.close()
    return name


def _count_for(seconds: float, workers: int, call, barrier_extra=None) -> float:
    """Calls per second of ``workers`` threads each running ``call(i)`` for ``seconds``."""
    counts = [0] * workers
    stop = threading.Event()
    barrier = threading.Barrier(workers + 1)

    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            call(i)
            barrier.wait()
            while not stop.is_set():
                call(i)
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below, and nobody waits for a dead thread
            errors.append(exc)
            barrier.abort()
            stop.set()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a benchmark thread failed: {errors[0]!r}") from errors[0]
    return sum(counts) / (time.perf_counter() - start)


def throughput(artifact: Any, x: np.ndarray, clients: int, rounds: int, seconds: float) -> dict:
    proc, url = start_worker("--plugin", "ort", "--artifact", str(artifact.path), *CLI_OPTIONS,
                             "--concurrency", str(clients))
    try:
        model = metadata_name(url)
        with api.load_engine("ort", artifact, options=ORT_OPTIONS) as local:
            name, output = local.inputs[0].name, local.outputs[0].name
            feeds = {name: x}
            local_rates, served_rates = [], []
            for r in range(rounds):
                order = ("local", "served") if r % 2 == 0 else ("served", "local")
                for which in order:
                    if which == "local":
                        local_rates.append(_count_for(seconds, clients, lambda i: local.infer(feeds)))
                        continue
                    # fresh connections per phase: an idle new one is closed after --header-timeout
                    lean = [LeanClient(url, model) for _ in range(clients)]
                    requests = [c.binary_request(name, x, output) for c in lean]
                    served_rates.append(_count_for(seconds, clients, lambda i: lean[i].send(requests[i])))
                    for c in lean:
                        c.close()
    finally:
        stop_worker(proc)
    ratios = [s / loc for s, loc in zip(served_rates, local_rates)]
    return {"clients": clients, "rounds": rounds, "seconds_per_phase": seconds,
            "local_per_s": local_rates, "served_per_s": served_rates, "ratio_per_round": ratios,
            "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}}


def resnet_artifact(out: Path) -> Any:
    from _ort_common import resnet18_onnx

    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_path = resnet18_onnx(out)
    return api.export("ort", ExportRequest(source=parse_model_arg(str(onnx_path)), out_dir=out / "store"))


def main(profile: bool = False) -> None:
    quick = os.environ.get("DK_BENCH_QUICK") == "1"
    with tempfile.TemporaryDirectory() as tmp:
        tiny = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=Path(tmp) / "tiny"))
        r18 = resnet_artifact(Path(tmp) / "r18")
        x_tiny = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
        x_r18 = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
        results = {
            "default_model": {"overhead": overhead(tiny, x_tiny, 3 if quick else 9, 50 if quick else 200,
                                                   50 if quick else 200, profile),
                              "throughput": throughput(tiny, x_tiny, 8, 1 if quick else 3, 2.0 if quick else 5.0)},
            "resnet18_like": {"overhead": overhead(r18, x_r18, 3 if quick else 7, 10 if quick else 30,
                                                   2 if quick else 4, profile),
                              "throughput": throughput(r18, x_r18, 8, 2 if quick else 4, 4.0 if quick else 12.0)},
        }
    facts = machine(onnxruntime=__import__("onnxruntime").__version__)
    facts["isa"] = isa()
    r18o, r18t = results["resnet18_like"]["overhead"], results["resnet18_like"]["throughput"]
    tino, tint = results["default_model"]["overhead"], results["default_model"]["throughput"]
    passed = r18o["overhead_p50_ms"]["binary"]["median"] <= 1.5 and r18t["ratio"]["median"] >= 0.95
    result = {"benchmark": "bench_serve_overhead", "machine": facts, "ort_options": ORT_OPTIONS, **results,
              "targets": {"resnet18_overhead_p50_ms": 1.5, "resnet18_throughput_ratio": 0.95}, "pass": passed}

    def span(d: dict) -> str:
        return f"{d['median']:.2f} ms ({d['min']:.2f}-{d['max']:.2f} over rounds)"

    line = (f"ORT 1 thread, no spin, batch 1, lean keep-alive client; {facts['cpu']} ({facts['isa']}), load "
            f"{facts['load_average'][0]:.1f} at the end: ResNet-18-sized p50 overhead over a direct session.run "
            f"(direct {r18o['p50_ms']['direct']:.1f} ms) binary {span(r18o['overhead_p50_ms']['binary'])}, round "
            f"trip minus the worker's own engine time {span(r18o['overhead_p50_ms']['binary_minus_own_engine'])}, "
            f"a bare asyncio server with the same thread hop (the floor) "
            f"{span(r18o['overhead_p50_ms']['bare_floor'])}, JSON "
            f"{span(r18o['overhead_p50_ms']['json'])}; 8 clients vs 8 local threads (Engine.infer) "
            f"{statistics.median(r18t['served_per_s']):.1f} vs {statistics.median(r18t['local_per_s']):.1f} req/s, "
            f"ratio {r18t['ratio']['median']:.2f} ({r18t['ratio']['min']:.2f}-{r18t['ratio']['max']:.2f}); "
            f"default model: overhead binary {span(tino['overhead_p50_ms']['binary'])} (minus own engine "
            f"{span(tino['overhead_p50_ms']['binary_minus_own_engine'])}), JSON "
            f"{span(tino['overhead_p50_ms']['json'])}, 8-client ratio {tint['ratio']['median']:.2f}; targets "
            f"R18 <= 1.5 ms and >= 0.95: {'met' if passed else 'NOT met'}")
    if quick:
        print(json.dumps(result, indent=2))
        print(line)
        return
    record("bench_serve_overhead", result, line)
    print(json.dumps(result, indent=2))
    print(line)


def isa() -> str:
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown ISA"
    found = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return "+".join(found) or "no AVX2"


if __name__ == "__main__":
    main(profile=parse_args(__doc__, ("--profile", "also record the worker's per-stage trace (DK_SERVE_TRACE)")).profile)
