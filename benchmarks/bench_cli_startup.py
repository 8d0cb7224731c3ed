"""`dk --help` and `dk doctor` wall time with every installed plugin (target: help <= 0.25 s).

    python benchmarks/bench_cli_startup.py

Runs each command 20 times, interleaved, and records the median in results/cli_startup.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path

from _cli import parse_args

RUNS = 20
COMMANDS = {"dk --help": ["--help"], "dk doctor": ["doctor"], "dk doctor --json": ["doctor", "--json"]}


def main() -> None:
    dk = shutil.which("dk")
    if dk is None:
        raise SystemExit("dk is not installed: pip install ./core")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, args in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run([dk, *args], check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    plugins = sorted(ep.name for ep in metadata.entry_points(group="dk"))
    result = {
        "plugins_installed": plugins,
        "runs": RUNS,
        "median_s": {name: round(statistics.median(t), 4) for name, t in times.items()},
        "min_s": {name: round(min(t), 4) for name, t in times.items()},
        "target_help_s": 0.25,
    }
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parse_args(__doc__)
    main()
