"""Shared by the ort benchmarks: the ResNet-18-sized ONNX, interleaved timing, result recording."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from _machine import named

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE / "README.md"
README_INTRO = """# Benchmarks

Plain scripts (not pytest). Each one writes its measurements to `results/<name>.json` and updates
its line below with the numbers it measured. Run them from the repository root with the venv active,
e.g. `python benchmarks/bench_ort_overhead.py`.
"""
ORT_SECTION = """## ort

Measured on a shared 2-core VM (each line names its CPU) while other work ran: every comparison interleaves its
variants in repeated trials and reports medians (per-call time = trial time / calls per trial).
"""


def resnet18_onnx(folder: Path) -> Path:
    """The ResNet-18-sized CNN of dk_torch.models as ONNX (dynamic batch, 1x3x224x224)."""
    import torch
    from dk_torch.models import resnet18_like

    path = folder / "resnet18-like.onnx"
    torch.onnx.export(
        resnet18_like(0), (torch.zeros(1, 3, 224, 224),), str(path), input_names=["input"],
        output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    return path


def interleaved(fns: dict[str, Callable[[], Any]], trials: int, calls: int, warmup: int = 5) -> dict[str, list[float]]:
    """Per-call seconds of each function in every trial; the order rotates between trials."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for t in range(trials):
        order = names[t % len(names):] + names[: t % len(names)]
        for name in order:
            fn = fns[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    import onnxruntime

    from _machine import machine as facts

    return facts(onnxruntime=onnxruntime.__version__)


def record(name: str, result: dict[str, Any], readme_line: str) -> None:
    """Write results/<name>.json and put ``readme_line`` under the README's ``## ort`` heading."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = README.read_text() if README.exists() else README_INTRO
    if "\n## ort\n" not in "\n" + text:
        text = text.rstrip("\n") + "\n\n" + ORT_SECTION
    head, _, rest = text.partition("## ort\n")
    match = re.search(r"^## ", rest, flags=re.M)
    section, tail = (rest[: match.start()], rest[match.start():]) if match else (rest, "")
    key = f"- `{name}.py`"
    lines = [line for line in section.strip("\n").split("\n") if not line.startswith(key)]
    prose = [line for line in lines if not line.startswith("- ")]
    bullets = [line for line in lines if line.startswith("- ")] + [f"{key}: {named(readme_line)}"]
    section = "\n" + "\n".join(prose).strip("\n") + "\n\n" + "\n".join(sorted(bullets)) + "\n"
    README.write_text(head + "## ort\n" + section + ("\n" + tail if tail else ""))
