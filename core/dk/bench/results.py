"""The benchmark result document (schema ``dk.bench/1``): writing it as JSON and CSV, reading it
back, and comparing it against a baseline for CI regression gates.

See docs/benchmarking.md for every field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import attrs

from dk.errors import DkError, UsageError

SCHEMA = "dk.bench/1"

#: CSV columns, in order: one row per run.
CSV_COLUMNS = (
    "engine", "precision", "batch", "input_shape", "device", "status", "accuracy",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "cv", "throughput", "speedup",
    "pre_ms", "infer_ms", "post_ms", "end_to_end_ms", "copies", "energy_j_per_sample", "iterations", "error",
)


def run_key(run: dict[str, Any]) -> tuple:
    """What identifies a run across result files: engine, precision, batch and input shape."""
    return (run["engine"], run["precision"], int(run["batch"]), tuple(run.get("input_shape") or ()))


def csv_row(run: dict[str, Any]) -> dict[str, Any]:
    latency = run.get("latency") or {}
    phases = run.get("phases") or {}
    energy = run.get("energy") or {}
    row = {k: run.get(k) for k in ("engine", "precision", "batch", "device", "status", "accuracy", "speedup",
                                   "copies", "error")}
    row["input_shape"] = "x".join(str(d) for d in run.get("input_shape") or ())
    for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "cv", "throughput",
                "iterations"):
        row[key] = latency.get(key)
    for name, column in (("preprocess", "pre_ms"), ("infer", "infer_ms"), ("postprocess", "post_ms")):
        row[column] = (phases.get(name) or {}).get("mean_ms")
    row["end_to_end_ms"] = (run.get("end_to_end") or {}).get("mean_ms")
    row["energy_j_per_sample"] = energy.get("j_per_sample")
    return row


def to_csv(document: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for run in document.get("runs", []):
        writer.writerow(csv_row(run))
    return buffer.getvalue()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temp file beside ``path`` and rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    return write_text_atomic(path, json.dumps(document, indent=2, default=str) + "\n")


def write_csv(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    return write_text_atomic(path, to_csv(document))


def load(path: str | os.PathLike, also_accept: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a result document, checking its schema (``dk.bench/1``, or one of ``also_accept``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DkError(f"no result file {path}; write one with 'dk run bench ... --output {path}'") from None
    except (OSError, ValueError) as exc:
        raise DkError(f"cannot read result file {path}: {exc}") from None
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema != SCHEMA and schema not in also_accept:
        raise DkError(f"{path} is not a dk benchmark result (schema {schema!r}, expected {SCHEMA!r})")
    return document


# -- regression gate --------------------------------------------------------------------------


@attrs.define
class Regression:
    """One metric of one run that got worse than the baseline by more than the allowed fraction."""

    engine: str
    precision: str
    batch: int
    metric: str
    baseline: float
    current: float
    change: float  # relative change in the bad direction (0.07 = 7 % worse)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


#: metric -> (where in a run, True when higher is better)
GATED_METRICS = {"p50_ms": (("latency", "p50_ms"), False), "throughput": (("latency", "throughput"), True),
                 "accuracy": (("accuracy",), True)}


def parse_fraction(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05. A bare number above 1 is refused: ``5`` would allow 500 %,
    so a CI gate written that way would never fire."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1]) / 100 if percent else float(raw)
    except ValueError:
        raise UsageError(f"--max-regression: {text!r} is not a percentage such as 5%") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--max-regression: {text!r} must be a finite percentage, not negative (e.g. 5%)")
    if not percent and value > 1:
        raise UsageError(f"--max-regression: {text!r} would allow {value:.0%} worse; write {raw}% for {raw} percent "
                         f"(or {value / 100:g} as a fraction)")
    return value


def _get(run: dict[str, Any], path: Iterable[str]) -> float | None:
    value: Any = run
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def compare(current: dict[str, Any], baseline: dict[str, Any], max_regression: float) -> tuple[list[Regression], int]:
    """Regressions of ``current`` against ``baseline`` (runs matched by :func:`run_key`), and how
    many runs were matched. Each metric's relative change in its bad direction must stay within
    ``max_regression``."""
    old = {run_key(r): r for r in baseline.get("runs", []) if r.get("status") == "ok"}
    found: list[Regression] = []
    matched = 0
    for run in current.get("runs", []):
        if run.get("status") != "ok" or run_key(run) not in old:
            continue
        matched += 1
        before = old[run_key(run)]
        for metric, (path, higher_is_better) in GATED_METRICS.items():
            a, b = _get(before, path), _get(run, path)
            if a is None or b is None or a == 0:
                continue
            change = (a - b) / a if higher_is_better else (b - a) / a
            if change > max_regression + 1e-12:
                found.append(Regression(run["engine"], run["precision"], int(run["batch"]), metric, a, b, change))
    return found, matched
