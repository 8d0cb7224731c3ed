"""The torch engine on an NVIDIA GPU: fp32 and fp16 at batch 1..64 with NVML samples (issue 7).

    python benchmarks/bench_torch_cuda_nvml.py [--model dk_torch.models:resnet18_like --shapes input:1x3x224x224]

Runs ``dk run bench --plugin torch --device cuda --precisions fp32,fp16 --batches 1,2,4,8,16,32,64``
with hardware sampling every 50 ms (needs ``./plugins/cuda[nvml]``), writes the result document to
results/bench_torch_cuda_nvml.json, and checks that the NVML samples are real: GPU utilisation and
power above zero during the runs, energy per sample for every run. On a machine without a GPU it
stops with the reason and records nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness_common import record

HERE = Path(__file__).parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="dk_torch.models:resnet18_like")
    parser.add_argument("--shapes", default="input:1x3x224x224")
    parser.add_argument("--iterations", default="200")
    args = parser.parse_args()
    from dk_cuda.nvml import NvmlUnavailable, session

    try:
        session()
    except NvmlUnavailable as exc:
        print(f"not measured: {exc.reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        command = [sys.executable, "-c", "import sys; from dk.cli import main; sys.exit(main())", "run", "bench", "--plugin", "torch", "--device", "cuda",
                   "--precisions", "fp32,fp16", "--batches", "1,2,4,8,16,32,64", "--model", args.model,
                   "--shapes", args.shapes, "--iterations", args.iterations, "--hw-interval", "0.05",
                   "--out", str(Path(tmp) / "artifacts"), "--output", str(out)]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        document = json.loads(out.read_text())
    series = document["hw"]["series"]
    util, power = series.get("gpu0.util", {}), series.get("gpu0.power", {})
    runs = document["runs"]
    real = bool(util.get("max", 0) > 0 and power.get("mean", 0) > 0
                and all((r.get("energy") or {}).get("j_per_sample") for r in runs))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_torch_cuda_nvml.document.json").write_text(json.dumps(document, indent=2) + "\n")
    by = {(r["precision"], r["batch"]): r for r in runs}
    best = {p: max((r["latency"]["throughput"], b) for (q, b), r in by.items() if q == p) for p in ("fp32", "fp16")}
    result = {"gpus": document["environment"].get("platform", {}).get("cuda", {}).get("gpus"),
              "runs": [{k: r.get(k) for k in ("precision", "batch", "status")} | {
                  "p50_ms": r["latency"]["p50_ms"], "samples_per_s": r["latency"]["throughput"],
                  "j_per_sample": (r.get("energy") or {}).get("j_per_sample")} for r in runs],
              "gpu_util_max": util.get("max"), "power_mean_w": power.get("mean"), "nvml_real": real}
    record("bench_torch_cuda_nvml", result,
           f"torch on {', '.join(result['gpus'] or ['a GPU'])}: fp32 batch 1 p50 {by[('fp32', 1)]['latency']['p50_ms']:.2f} ms, "
           f"fp16 batch 1 {by[('fp16', 1)]['latency']['p50_ms']:.2f} ms; best {best['fp32'][0]:,.0f} samples/s fp32 "
           f"(batch {best['fp32'][1]}), {best['fp16'][0]:,.0f} fp16 (batch {best['fp16'][1]}); NVML: util up to "
           f"{util.get('max', 0):.0f} %, {power.get('mean', 0):.0f} W mean, real samples: {real}")
    print(json.dumps(result, indent=2))
    return 0 if real else 1


if __name__ == "__main__":
    sys.exit(main())
