"""10,000 malformed requests against a real ``dk serve`` (uvicorn in its own process).

    python benchmarks/bench_serve_load.py

Every malformed request must get a 4xx with ``{"error": ...}``; every 50th request a liveness
probe and a valid inference are interleaved and must succeed; the worker must still be alive at the
end. Results: results/bench_serve_load.json and a line under ``## serve`` in README.md.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from _cli import benchmark_parser  # noqa: E402
from _machine import machine, named  # noqa: E402
from tests.core.test_serve_malformed import MAX_BODY, malformed_requests  # noqa: E402
from tests.core.test_serve_support import infer_body  # noqa: E402

SECTION = "## serve"
SECTION_PROSE = ("Measured on a shared 2-core x86 VM while other work ran (each line gives the load average); the "
                 "worker is `dk serve` (uvicorn + httptools) in its own process on loopback, clients in the benchmark "
                 "process. Re-run all three on a quiet machine: "
                 "`python benchmarks/bench_serve_overhead.py --profile && "
                 "python benchmarks/bench_serve_parse.py && python benchmarks/bench_serve_load.py`.")


def start_worker(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``dk serve --port 0 ARGS`` in a subprocess (``env`` added to the environment); (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from dk.cli import main; sys.exit(main())", "serve", "--port", "0",
         "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    line = proc.stderr.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"dk serve did not start: {line}{proc.stderr.read()}")
    return proc, match.group(1)


def stop_worker(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(30)


def record(name: str, result: dict[str, Any], readme_line: str) -> None:
    """Write results/<name>.json and put ``readme_line`` under the README's ``## serve`` heading."""
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    readme = HERE / "README.md"
    text = readme.read_text()
    if f"\n{SECTION}\n" not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{SECTION_PROSE}\n"
    head, _, rest = text.partition(f"{SECTION}\n")
    match = re.search(r"^## ", rest, flags=re.M)
    section, tail = (rest[: match.start()], rest[match.start():]) if match else (rest, "")
    key = f"- `{name}.py`"
    bullets = sorted([ln for ln in section.strip("\n").split("\n") if ln.startswith("- ") and not ln.startswith(key)]
                     + [f"{key}: {named(readme_line)}"])
    section = f"\n{SECTION_PROSE}\n\n" + "\n".join(bullets) + "\n"
    readme.write_text(head + f"{SECTION}\n" + section + ("\n" + tail if tail else ""))


class Client:
    """One keep-alive connection, reopened when the worker closes it (after a 413, for instance)."""

    def __init__(self, url: str):
        self.host, self.port = url.split("//")[1].split(":")
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: Any, headers: dict, chunked: bool = False) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay
            try:
                self.conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return response.status, data
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError


def main(total: int = 10_000) -> None:
    proc, url = start_worker("--plugin", "ort", "--max-body", str(MAX_BODY))
    client = Client(url)
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    requests: list = []
    seed = 0
    while len(requests) < total:
        requests += list(malformed_requests(seed))
        seed += 1
    # Invalid framing (such as a non-numeric Content-Length) is answered by dk's protocol layer, in JSON too.
    requests = requests[:total]
    codes: dict[str, int] = {}
    bad: list[dict[str, Any]] = []
    probes = probe_failures = 0
    expected = None
    start = time.perf_counter()
    for i, (method, path, body, headers) in enumerate(requests):
        headers = dict(headers)
        no_length = headers.pop("__no_length__", None) is not None
        chunked = isinstance(body, list)
        payload = iter(body) if chunked else body
        if chunked and not no_length:
            headers.pop("Content-Length", None)
        try:
            status, data = client.send(method, path, payload, headers, chunked)
        except (BrokenPipeError, ConnectionResetError) as exc:
            size = sum(map(len, body)) if chunked else len(body)
            if size > MAX_BODY:  # the worker answered 413 and closed while the client was still sending
                codes["closed-while-sending-oversize"] = codes.get("closed-while-sending-oversize", 0) + 1
            else:
                bad.append({"i": i, "path": path, "problem": f"no answer: {type(exc).__name__}"})
            continue
        except Exception as exc:  # the client could not even get an answer
            bad.append({"i": i, "path": path, "problem": f"no answer: {type(exc).__name__}"})
            continue
        codes[str(status)] = codes.get(str(status), 0) + 1
        try:
            doc = json.loads(data)
            json_ok = set(doc) == {"error"} and isinstance(doc["error"], str)
        except ValueError:
            json_ok = False
        if not (400 <= status < 500) or not json_ok:
            bad.append({"i": i, "path": path, "status": status, "body": data[:120].decode("utf-8", "replace")})
        if i % 50 == 0:
            probes += 1
            live, _ = client.send("GET", "/v2/health/live", None, {})
            ok, answer = client.send("POST", "/v2/models/digitsnet/infer", infer_body(x), {})
            logits = json.loads(answer)["outputs"][0]["data"] if ok == 200 else None
            expected = expected or logits
            if live != 200 or ok != 200 or logits != expected:
                probe_failures += 1
    seconds = time.perf_counter() - start
    alive = proc.poll() is None
    exit_code = stop_worker(proc)
    plain = [b for b in bad if "status" in b and 400 <= b["status"] < 500]
    result = {
        "benchmark": "bench_serve_load", "machine": machine(), "requests": total, "seconds": seconds,
        "requests_per_s": total / seconds, "status_codes": codes, "violations": len(bad),
        "violations_http_layer_plain_4xx": len(plain), "examples": bad[:10], "probes": probes,
        "probe_failures": probe_failures, "worker_alive_at_end": alive, "worker_exit_code": exit_code,
        "pass": not bad and probe_failures == 0 and alive and exit_code == 0,
    }
    facts = result["machine"]
    line = (f"{facts['cpu']}, load {facts['load_average'][0]:.1f}: "
            f"{total} malformed requests against `dk serve` in {seconds:.1f} s ({total / seconds:.0f}/s): "
            f"status codes {dict(sorted(codes.items()))}; {len(bad)} not a 4xx JSON error "
            f"({len(plain)} of them a 4xx that is not JSON); {probes} interleaved liveness + "
            f"valid inference probes, {probe_failures} failed; worker alive at the end: {alive}, clean exit: "
            f"{exit_code == 0}")
    record("bench_serve_load", result, line)
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2))
    for example in bad[:5]:
        print(example)


if __name__ == "__main__":
    parser = benchmark_parser(__doc__)
    parser.add_argument("total", type=int, nargs="?", default=10_000, help="malformed requests to send (default 10000)")
    main(parser.parse_args().total)
