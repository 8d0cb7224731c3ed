"""``dk debug diverge`` vs marking every tensor, on the ResNet-18-sized CNN (ort vs a broken ort).

    python benchmarks/bench_debug_diverge.py

One node of the CNN is broken on purpose (the test engine ``broken`` of tests/core, installed for the
run); bisection and ``--mark-all`` run alternately, each as its own ``dk`` process, so wall time
and peak RSS are those of one command. The peak is the ``VmHWM`` the process reads of itself as it
exits, not ``ru_maxrss`` from ``wait4``: that one also counts the benchmark's own memory, which
the child holds between fork and exec (this process has torch loaded, about 540 MiB, which
was the "bisection peak" recorded before 2026-12-03). Targets: the node found in
at most ceil(log2(nodes)) + 2 builds, in < 0.25x the time and < 0.25x the peak memory of mark-all.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from _cli import parse_args  # noqa: E402
from _ort_common import machine, record, resnet18_onnx  # noqa: E402

ROUNDS = 2
SAMPLES = 16


def main() -> None:
    import onnx

    from dk.debug.graph import candidate_nodes
    from tests.conftest import make_distribution

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = resnet18_onnx(folder)
        nodes = candidate_nodes(onnx.load(str(model)))
        broken = nodes[int(len(nodes) * 0.6)].name
        rng = np.random.default_rng(0)
        np.savez(folder / "x.npz", x=rng.random((SAMPLES, 3, 224, 224), dtype=np.float32))
        source = (Path(__file__).parents[1] / "tests" / "core" / "broken_engine_plugin.py").read_text()
        site = make_distribution(folder / "site", "dk-bench-broken", {"broken": source})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
        env.pop("DK_LOAD_PLUGINS", None)
        common = ["debug", "diverge", "--plugins", "ort,broken", "-o", f"broken:node={broken}", "--model", str(model),
                  "--data", str(folder / "x.npz"), "--samples", str(SAMPLES), "--json",
                  "--subgraph", str(folder / "culprit.onnx")]
        results: dict[str, list] = {"bisect": [], "mark_all": []}
        for i in range(ROUNDS):
            for mode in (["bisect", "mark_all"] if i % 2 == 0 else ["mark_all", "bisect"]):
                extra = ["--mark-all"] if mode == "mark_all" else []
                report, wall, rss = measure(common + extra + ["--out", str(folder / f"a-{mode}-{i}")], env)
                assert report["culprit"]["name"] == broken, report["culprit"]
                results[mode].append({"seconds": wall, "peak_rss_mib": rss, "builds": report["builds"]})
    bound = math.ceil(math.log2(len(nodes))) + 2
    t = {m: statistics.median(r["seconds"] for r in v) for m, v in results.items()}
    mem = {m: statistics.median(r["peak_rss_mib"] for r in v) for m, v in results.items()}
    builds = results["bisect"][0]["builds"]
    result = {
        "benchmark": "bench_debug_diverge", "machine": machine(), "model": "resnet18-like 1x3x224x224",
        "candidate_nodes": len(nodes), "broken_node": broken, "samples": SAMPLES, "rounds": ROUNDS,
        "build_bound": bound, "runs": results, "median_seconds": t, "median_peak_rss_mib": mem,
        "time_ratio": t["bisect"] / t["mark_all"], "memory_ratio": mem["bisect"] / mem["mark_all"],
    }
    line = (f"ResNet-18-sized CNN ({len(nodes)} candidate nodes, {SAMPLES} samples, one node broken): bisection "
            f"named it in {builds} builds (target <= {bound}) in {t['bisect']:.1f} s and {mem['bisect']:.0f} MiB peak "
            f"RSS vs mark-all {t['mark_all']:.1f} s and {mem['mark_all']:.0f} MiB: time {result['time_ratio']:.3f}x, "
            f"memory {result['memory_ratio']:.3f}x (targets < 0.25x; median of {ROUNDS} alternating runs, load "
            f"average {result['machine']['load_average'][0]:.1f})")
    record("bench_debug_diverge", result, line)
    print(line)


#: Runs ``dk`` and, at exit, writes its own peak resident set (kB) as the last line of stderr.
CHILD = """import atexit, sys
def peak():
    line = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
    sys.stderr.write("\\nDK_BENCH_VMHWM_KB " + line.split()[1] + "\\n")
atexit.register(peak)
from dk.cli import main
sys.exit(main())
"""


def measure(args: list[str], env: dict[str, str]) -> tuple[dict, float, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, env=env)
    wall = time.perf_counter() - start
    err = proc.stderr.decode()
    if proc.returncode not in (0, 1) or "DK_BENCH_VMHWM_KB " not in err:
        raise SystemExit(f"dk failed ({proc.returncode}): {err.strip()[-400:]}")
    peak_kb = int(err.rsplit("DK_BENCH_VMHWM_KB ", 1)[1].split()[0])
    return json.loads(proc.stdout), wall, peak_kb / 1024


if __name__ == "__main__":
    parse_args(__doc__)
    main()
