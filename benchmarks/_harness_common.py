"""Shared by the bench_harness_* benchmarks: write results/<name>.json and a line under ``## bench``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from _machine import named

HERE = Path(__file__).parent
SECTION = """## bench

`dk run bench` itself: harness overhead and the cost of hardware sampling. Measured on a shared
2-core VM (each line names its CPU) while other work ran; variants are interleaved in repeated trials and compared by the
median of per-trial paired ratios.
"""


def record(name: str, result: dict[str, Any], line: str) -> None:
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    readme = HERE / "README.md"
    text = readme.read_text()
    if "\n## bench\n" not in "\n" + text:
        text = text.rstrip("\n") + "\n\n" + SECTION
    head, _, rest = text.partition("## bench\n")
    match = re.search(r"^## ", rest, flags=re.M)
    section, tail = (rest[: match.start()], rest[match.start():]) if match else (rest, "")
    key = f"- `{name}.py`"
    lines = [x for x in section.strip("\n").split("\n") if not x.startswith(key)]
    prose = [x for x in lines if not x.startswith("- ")]
    bullets = sorted([x for x in lines if x.startswith("- ")] + [f"{key}: {named(line)}"])
    section = "\n" + "\n".join(prose).strip("\n") + "\n\n" + "\n".join(bullets) + "\n"
    readme.write_text(head + "## bench\n" + section + ("\n" + tail if tail else ""))
