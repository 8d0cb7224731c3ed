"""Engine.infer overhead of the ort plugin over a bare InferenceSession.run on the same session.

    python benchmarks/bench_ort_overhead.py

Targets: at most 10 us per call on the tiny default model, at most 3 % on the ResNet-18-sized CNN
at batch 1. Results: results/bench_ort_overhead.json and a line in README.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from _cli import parse_args
from _ort_common import interleaved, machine, median, record, resnet18_onnx
from dk import api
from dk.sources import parse_model_arg
from dk.specs import ExportRequest


def overhead(artifact, feeds, trials: int, calls: int) -> dict[str, float]:
    """Median per-call time of bare session.run and Engine.infer, interleaved, on one session."""
    with api.load_engine("ort", artifact) as engine:
        session, names = engine.session, [s.name for s in engine.outputs]
        np.testing.assert_array_equal(session.run(names, feeds)[0], next(iter(engine.infer(feeds).values())))
        times = interleaved({"bare": lambda: session.run(names, feeds), "engine": lambda: engine.infer(feeds)},
                            trials, calls)
    # Overhead = median over trials of (engine - bare) measured back to back in the same trial:
    # robust to the load of a shared machine, which shifts whole trials up or down.
    bare, eng = median(times["bare"]), median(times["engine"])
    paired = median([e - b for e, b in zip(times["engine"], times["bare"])])
    ratio = median([e / b for e, b in zip(times["engine"], times["bare"])])
    return {"bare_us": bare * 1e6, "engine_us": eng * 1e6, "overhead_us": paired * 1e6,
            "overhead_pct": (ratio - 1) * 100, "difference_of_medians_us": (eng - bare) * 1e6,
            "trials": trials, "calls_per_trial": calls}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "artifacts"
        tiny = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=out))
        x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
        small = overhead(tiny, {"input": x}, trials=401, calls=200)
        onnx_path = resnet18_onnx(Path(tmp))
        resnet = api.export("ort", ExportRequest(source=parse_model_arg(str(onnx_path)), out_dir=out))
        image = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
        big = overhead(resnet, {"input": image}, trials=41, calls=5)
    result = {
        "benchmark": "bench_ort_overhead",
        "machine": machine(),
        "default_model_batch1": small,
        "resnet18_like_batch1": big,
        "targets": {"default_model_overhead_us": 10, "resnet18_like_overhead_pct": 3},
        "pass": small["overhead_us"] <= 10 and big["overhead_pct"] <= 3,
    }
    line = (
        f"Engine.infer vs bare session.run: default model {small['engine_us']:.1f} vs {small['bare_us']:.1f} us/call, "
        f"overhead {small['overhead_us']:.1f} us (target <= 10; {small['trials']} trials x {small['calls_per_trial']} calls); ResNet-18-sized batch 1 "
        f"{big['engine_us'] / 1e3:.2f} vs {big['bare_us'] / 1e3:.2f} ms, overhead {big['overhead_pct']:+.2f} % "
        f"(target <= 3 %; {big['trials']} trials x {big['calls_per_trial']} calls); overhead = median of per-trial "
        "paired differences (ratios for the ResNet)."
    )
    record("bench_ort_overhead", result, line)
    print(line)


if __name__ == "__main__":
    parse_args(__doc__)
    main()
