"""Shared by the openvino benchmarks: the ResNet-18-sized IRs, benchmark_app runs, result recording."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _machine import named

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE / "README.md"
HEADING = "## openvino"
SECTION_INTRO = """Measured on a shared 2-core VM (each line names its CPU) while other work ran. Every comparison alternates its
variants over several rounds and reports medians; benchmark_app runs on the same IR in the same script
run, with `-infer_precision f32` as dk's engine (OpenVINO would otherwise pick bf16 on this CPU) and
`-ip f32` (float32 inputs, as dk feeds; its default adds a u8 input conversion).
"""
RESNET_SOURCE = "dk_torch.models:resnet18_like"


def resnet_ir(out: Path) -> Any:
    """The ResNet-18-sized CNN as an fp32 IR, static batch 1 (through the torch plugin's ONNX export)."""
    from dk import api
    from dk.sources import parse_model_arg
    from dk.specs import ExportRequest

    request = ExportRequest(source=parse_model_arg(RESNET_SOURCE), out_dir=out, shapes={"input": (1, 3, 224, 224)},
                            dynamic_batch=False)
    return api.export("openvino", request)


def random_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 1, 3, 224, 224), dtype=np.float32)


def benchmark_app(xml: Path, hint: str, seconds: int) -> dict[str, float]:
    """Run OpenVINO's benchmark_app on ``xml`` (CPU, fp32 math) and parse its FPS and latencies."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    cmd = [exe, "-m", str(xml), "-d", "CPU", "-hint", hint, "-t", str(seconds), "-infer_precision", "f32",
           "-ip", "f32"]  # its default feeds u8 images through an added conversion: dk feeds float32
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark_app failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    text = proc.stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        if match is None:
            raise RuntimeError(f"no {pattern!r} in benchmark_app's output:\n{text[-3000:]}")
        return float(match.group(1))

    return {
        "fps": number(r"Throughput:\s+([\d.]+) FPS"),
        "median_ms": number(r"Median:\s+([\d.]+) ms"),
        "average_ms": number(r"Average:\s+([\d.]+) ms"),
        "count": number(r"Count:\s+(\d+) iterations"),
        "nireq": number(r"(\d+) inference requests?") if "inference request" in text else 1.0,  # sync: one
    }


def median(values: list[float]) -> float:
    return float(np.median(values))


def machine() -> dict[str, Any]:
    import openvino

    from _machine import machine as facts

    return facts(openvino=openvino.get_version())


def timed(fn, seconds: float) -> tuple[int, float]:
    """Call ``fn`` (which returns how many samples it ran) for at least ``seconds``; (samples, elapsed)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done, time.perf_counter() - start


def record(name: str, result: dict[str, Any], readme_line: str) -> None:
    """Write results/<name>.json and put ``readme_line`` under the README's ``## openvino`` heading."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = README.read_text()
    if f"\n{HEADING}\n" not in f"\n{text}":
        text = f"{text.rstrip()}\n\n{HEADING}\n\n{SECTION_INTRO}"
    head, _, rest = text.partition(f"{HEADING}\n")
    following = re.search(r"^## ", rest, flags=re.MULTILINE)
    section, tail = (rest[: following.start()], rest[following.start():]) if following else (rest, "")
    key = f"- `{name}.py`"
    bullets = sorted([ln for ln in section.splitlines() if ln.startswith("- ") and not ln.startswith(key)]
                     + [f"{key}: {named(readme_line)}"])
    section = f"\n{SECTION_INTRO}\n" + "\n".join(bullets) + "\n"
    README.write_text(head + HEADING + "\n" + section + ("\n" + tail if tail else ""))
