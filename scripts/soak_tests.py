"""Run the README test command's pytest N times, optionally beside K CPU-burning processes, and count
failures per test: a flaky test shows up as "2/8" instead of hiding behind a green rerun.

    python scripts/soak_tests.py --runs 5                       # 5 quiet runs of the whole suite
    python scripts/soak_tests.py --runs 3 --burners 3           # 3 runs beside 3 busy processes
    python scripts/soak_tests.py --runs 2 -- -k serve           # arguments after -- go to pytest
    python scripts/soak_tests.py --runs 5 --output soak.json    # also write the counts as JSON

Each run writes a JUnit XML file (into --keep DIR, or a temporary folder); failures and errors
are counted per test id from it. Exits 1 when any test failed in any run, 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
BURN = "while True: pass"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="dk-soak-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with burners(args.burners):
            runs = [run_once(index, folder, args.pytest_args) for index in range(1, args.runs + 1)]
    report = summarize(runs, args)
    print_report(report)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["failed_tests"] or report["runs_without_results"] else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", "-n", type=int, default=5, help="how many times to run pytest (default 5)")
    parser.add_argument("--burners", "-k", type=int, default=0,
                        help="CPU-burning processes to run beside pytest (default 0: a quiet machine)")
    parser.add_argument("--keep", metavar="DIR", help="keep each run's JUnit XML and output in DIR")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the counts as JSON to FILE")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be >= 1 and --burners >= 0")
    args.pytest_args = pytest_args
    return args


@contextlib.contextmanager
def burners(count: int) -> Iterator[None]:
    """``count`` busy Python processes for the duration of the block (always killed at the end)."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def run_once(index: int, folder: Path, pytest_args: list[str]) -> dict:
    """One pytest run from the repository root: its exit status, duration, load and JUnit results."""
    xml = folder / f"run-{index}.xml"
    log = folder / f"run-{index}.log"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *pytest_args]
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    results = parse_junit(xml) if xml.exists() else {}
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    print(f"run {index}: exit {code} in {seconds:.0f} s (load {load_before:.1f} -> {os.getloadavg()[0]:.1f}): "
          f"{tail[0]}", flush=True)
    return {"run": index, "exit": code, "seconds": round(seconds, 1), "load_average_1m": [load_before,
            os.getloadavg()[0]], "summary": tail[0], "results": results}


def parse_junit(path: Path) -> dict[str, str]:
    """Test id -> passed, failed, error or skipped, from a pytest JUnit XML file."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = test_id(case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        outcome = "failed" if "failure" in tags else "error" if "error" in tags else \
            "skipped" if "skipped" in tags else "passed"
        if outcomes.get(test) in ("failed", "error"):
            continue  # a test that failed in setup and teardown is one failure
        outcomes[test] = outcome
    return outcomes


def test_id(classname: str, name: str) -> str:
    """``tests.core.test_x.TestY`` + ``test_z`` -> ``tests/core/test_x.py::TestY::test_z``."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = ROOT.joinpath(*parts[:cut]).with_suffix(".py")
        if module.exists():
            return "::".join([module.relative_to(ROOT).as_posix(), *parts[cut:], name])
    return f"{classname}::{name}"


def summarize(runs: list[dict], args: argparse.Namespace) -> dict:
    failures: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for run in runs:
        for test, outcome in run["results"].items():
            seen[test] += 1
            if outcome in ("failed", "error"):
                failures[test] += 1
    broken_runs = [r["run"] for r in runs if not r["results"] and r["exit"] != 5]  # pytest never got to test
    return {
        "command": ["python", "-m", "pytest", *args.pytest_args], "runs": len(runs), "burners": args.burners,
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version()},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tests": len(seen), "failed_runs": sum(r["exit"] not in (0, 5) for r in runs),
        "failed_tests": {test: f"{count}/{seen[test]}" for test, count in failures.most_common()},
        "runs_without_results": broken_runs,
        "per_run": [{k: v for k, v in r.items() if k != "results"} for r in runs],
    }


def print_report(report: dict) -> None:
    print(f"\n{report['runs']} run(s) of {' '.join(report['command'])} with {report['burners']} burner(s) on "
          f"{report['machine']['cpu']} ({report['machine']['cores']} cores): {report['tests']} tests, "
          f"{report['failed_runs']} run(s) failed")
    for test, count in report["failed_tests"].items():
        print(f"  {count:>7}  {test}")
    if not report["failed_tests"]:
        print("  no test failed in any run")
    for run in report["runs_without_results"]:
        print(f"  run {run} produced no JUnit results (see its log with --keep)")


def _cpu() -> str:
    try:
        from dk.bench.environment import cpu_model

        return cpu_model()
    except Exception:  # noqa: BLE001 - the script also runs where dk is not importable
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
