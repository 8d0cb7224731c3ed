"""``dk run quantize --max-accuracy-drop``: int8 with the fewest nodes kept in float that fits a budget.

Quantize everything and measure; if the drop from fp32 exceeds the budget, rank the weighted nodes
by sensitivity (:mod:`dk.debug.sensitivity`), keep the smallest most-sensitive prefix in float that
fits (binary search over its length, assuming more float never hurts; the other nodes follow when
the weighted ones are not enough), then prune: drop every float node the budget does not need. Trials are built in a temp folder; only the chosen artifact is
written to ``--out``, and its manifest records the float nodes and the measured accuracies.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from dk import api, pipeline
from dk.debug.sensitivity import Evaluator, Trial, graph_nodes, layer_sensitivity, unnamed_nodes
from dk.errors import DkError, UsageError


@attrs.frozen
class Budget:
    """An allowed accuracy drop: ``points`` (absolute, ``1%`` = 0.01) or relative to fp32 (``1%rel``)."""

    value: float
    relative: bool
    text: str

    def allowed(self, fp32_accuracy: float) -> float:
        return self.value * fp32_accuracy if self.relative else self.value

    def describe(self) -> str:
        kind = "relative to fp32 accuracy" if self.relative else "accuracy points (absolute)"
        return f"{self.text} ({kind})"


def parse_budget(text: str) -> Budget:
    """``1%``, ``0.01`` or ``1e-2``: points of accuracy; ``1%rel``: relative to the fp32 accuracy."""
    match = re.fullmatch(r"\s*((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*(%?)\s*(rel)?\s*", text or "")
    if not match:
        raise UsageError(f"--max-accuracy-drop {text!r}: give points like 1% (or 0.01), or a relative drop like 1%rel")
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if value >= 1:
        raise UsageError(f"--max-accuracy-drop {text!r}: a drop of {value:g} is the whole accuracy; give e.g. 1%")
    return Budget(value, bool(match.group(3)), text.strip())


def fits(trial: Trial, evaluator: Evaluator, budget: Budget) -> bool:
    return evaluator.fp32_accuracy - trial.accuracy <= budget.allowed(evaluator.fp32_accuracy) + 1e-12


def choose_float_nodes(evaluator: Evaluator, budget: Budget, ranked: list[str], others: list[str] = (),
                       progress: Callable[[str], None] = lambda _: None, unnamed: int = 0) -> Trial:
    """The trial with the fewest float nodes found to fit (greedy by rank, then pruned). ``ranked``
    are the weighted nodes, most sensitive first; when even all of them in float do not fit, the
    ``others`` (activations, pooling, additions: quantized too) follow them, in graph order.
    ``unnamed``: nodes without a name, which no exclude list can name (said when the budget fails)."""
    everything = evaluator.trial(ranked)
    if not fits(everything, evaluator, budget) and others:
        progress("every weighted node in float is not enough: trying every node")
        ranked = [*ranked, *others]
        everything = evaluator.trial(ranked)
    if not fits(everything, evaluator, budget):
        measured = f"accuracy {everything.accuracy:.4f} vs fp32 {evaluator.fp32_accuracy:.4f}"
        if unnamed:
            raise DkError(
                f"the budget {budget.describe()} cannot be met with every named node ({len(ranked)}) in float: "
                f"{measured}; {unnamed} node(s) without a name could not be tried in float (exclude_nodes names "
                "nodes: give them names in the ONNX graph); nothing was written")
        raise DkError(f"the budget {budget.describe()} cannot be met even with every node in float: {measured}; "
                      "nothing was written")
    lo, hi, best = 0, len(ranked), everything  # prefix length hi fits, lo does not (0: the full int8 failed)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        progress(f"trying the {mid} most sensitive node(s) in float")
        trial = evaluator.trial(ranked[:mid])
        if fits(trial, evaluator, budget):
            hi, best = mid, trial
        else:
            lo = mid
    chosen = list(ranked[:hi])
    for name in reversed(ranked[:hi]):  # prune, least sensitive first
        if len(chosen) == 1:
            break
        progress(f"trying without {name}")
        trial = evaluator.trial([n for n in chosen if n != name])
        if fits(trial, evaluator, budget):
            chosen.remove(name)
            best = trial
    return best


def quantize_within_budget(plugin: str, opts: pipeline.BuildOptions, budget_text: str, *, bench_calls: int = 50,
                           progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Build the int8 artifact of ``plugin`` whose accuracy drop fits the budget, and measure its speed."""
    budget = parse_budget(budget_text)
    if opts.artifact:
        raise UsageError("--artifact: --max-accuracy-drop quantizes the original model; give --model instead")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dk-mixed-") as tmp:
        evaluator = Evaluator.start(plugin, opts, Path(tmp))
        progress("quantizing every node")
        full = evaluator.trial([])
        ranking: list[dict[str, Any]] = []
        searched = False
        if fits(full, evaluator, budget):
            chosen, artifact = full, evaluator.quantize([], out=opts.out)
        elif (earlier := reuse_earlier_choice(evaluator, budget, full, opts.out, progress)) is not None:
            chosen, artifact = earlier
        else:
            progress("ranking nodes by sensitivity")
            ranking = layer_sensitivity(evaluator, progress=progress)
            ranked = [r["node"] for r in ranking]
            others = [name for name, _ in graph_nodes(evaluator) if name not in ranked]
            chosen = choose_float_nodes(evaluator, budget, ranked, others, progress, unnamed_nodes(evaluator))
            artifact, searched = evaluator.quantize(chosen.float_nodes, out=opts.out), True
        record = {
            "budget": budget.describe(), "allowed_drop": budget.allowed(evaluator.fp32_accuracy),
            "data": evaluator.data.name, "samples": len(evaluator.data.x),
            "accuracy_fp32": evaluator.fp32_accuracy, "accuracy_int8_full": full.accuracy,
            "accuracy": chosen.accuracy, "drop": evaluator.fp32_accuracy - chosen.accuracy,
            "float_nodes": list(chosen.float_nodes), "trials": len(evaluator.trials), "searched": searched,
        }
        record_in_manifest(artifact.path, record)
        speed = measure_speed(plugin, opts, {"fp32": evaluator.fp32_artifact, "int8_full": full.artifact,
                                             "mixed": artifact.path}, evaluator.data.model_inputs,
                             bench_calls)
    return {"stage": "quantize", "plugin": plugin, "artifact": artifact_json(artifact), **record,
            "ranking": ranking, "speed": speed, "seconds": time.perf_counter() - started}


def artifact_json(artifact: Any) -> dict[str, Any]:
    """The artifact as ``dk run quantize`` reports it, read again for the record just added to its
    manifest, with ``reused`` of the build (reading it again loses that)."""
    from dk.artifacts import Artifact

    return {**Artifact.load(artifact.path).to_json(), "reused": artifact.reused}


def reuse_earlier_choice(evaluator: Evaluator, budget: Budget, full: Trial, out: Path,
                         progress: Callable[[str], None] = lambda _: None) -> tuple[Trial, Any] | None:
    """The float nodes an earlier run chose for this budget, when its artifact in ``out`` is still
    the build those nodes give (same cache key: same model, calibration, options and tools) and
    it was measured on the same data with the same fp32 and full-int8 accuracy. The artifact is
    scored again and must still fit: then the search is skipped. None otherwise."""
    import shutil

    for folder, record in earlier_records(evaluator, out):
        if (record.get("budget"), record.get("data"), record.get("samples"), record.get("accuracy_fp32"),
                record.get("accuracy_int8_full")) != (budget.describe(), evaluator.data.name, len(evaluator.data.x),
                                                      evaluator.fp32_accuracy, full.accuracy):
            continue
        float_nodes = list(record.get("float_nodes") or [])
        # quantized against a copy, so that a choice the cache no longer matches writes nothing to --out
        copies = evaluator.work / f"earlier-{len(evaluator.trials)}"
        shutil.copytree(folder, copies / folder.relative_to(out))
        artifact = evaluator.quantize(float_nodes, out=copies)
        if not artifact.reused:
            continue  # the nodes give another build now: that earlier choice says nothing
        trial = evaluator.score(artifact, float_nodes)
        if fits(trial, evaluator, budget):
            progress(f"reusing the float nodes chosen earlier for {budget.text}: {len(float_nodes)} node(s)")
            return trial, evaluator.quantize(float_nodes, out=out)
    return None


def earlier_records(evaluator: Evaluator, out: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, ``extra.mixed_precision``) of this plugin's artifacts in ``out`` built from the same source."""
    source = evaluator.fp32_artifact.manifest.get("source", {}).get("sha256")
    records = []
    for manifest_path in sorted(Path(out).glob("*/*/dk.json")):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue
        record = (manifest.get("extra") or {}).get("mixed_precision")
        if (isinstance(record, dict) and manifest.get("plugin") == evaluator.plugin
                and manifest.get("precision") == "int8" and (manifest.get("source") or {}).get("sha256") == source):
            records.append((manifest_path.parent, record))
    return records


def drop_record(artifact: Any) -> None:
    """Remove ``extra.mixed_precision`` from a reused artifact's ``dk.json``: a plain ``dk run
    quantize`` that lands on the artifact a budget chose (one with no float node) did not measure
    it against that budget, and its manifest should not say it did."""
    manifest_path = Path(artifact.path) / "dk.json"
    manifest = json.loads(manifest_path.read_text())
    if "mixed_precision" not in (manifest.get("extra") or {}):
        return
    del manifest["extra"]["mixed_precision"]
    _write_manifest(manifest_path, manifest)
    artifact.manifest.get("extra", {}).pop("mixed_precision", None)


def record_in_manifest(folder: Path, record: dict[str, Any]) -> None:
    """Add ``extra.mixed_precision`` to the artifact's ``dk.json`` (temp file, then rename). The
    manifest's file checksums cover the model files, not ``dk.json`` itself."""
    manifest_path = Path(folder) / "dk.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("extra", {})["mixed_precision"] = record
    _write_manifest(manifest_path, manifest)


def _write_manifest(manifest_path: Path, manifest: dict[str, Any]) -> None:
    tmp = manifest_path.with_name(".dk.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)


#: Interleaved rounds of the speed measurement, the least time each engine gets per round, and a
#: cap on calls per round for very fast engines.
ROUNDS = 9
ROUND_SECONDS = 0.05
MAX_CALLS_PER_ROUND = 2000


def measure_speed(plugin: str, opts: pipeline.BuildOptions, artifacts: dict[str, Any], x: pipeline.Inputs,
                  calls: int) -> dict[str, Any]:
    """Median latency of each artifact on one batch of ``x`` (the rows of the only input, or every
    input's by name), measured in interleaved rounds, and the speed-ups over fp32: what the float
    nodes cost."""
    from dk.artifacts import Artifact

    engines = {k: api.load_engine(plugin, v if isinstance(v, Artifact) else Artifact.load(v), opts.device, opts.options)
               for k, v in artifacts.items()}
    try:
        feeds = next(pipeline.batches(next(iter(engines.values())), x, size=1))[1]
        times: dict[str, list[float]] = {k: [] for k in engines}
        slowest = 0.0  # the slowest engine's call, from the last of its warm-up calls
        for engine in engines.values():
            for _ in range(5):
                start = time.perf_counter()
                engine.infer(feeds)
            slowest = max(slowest, time.perf_counter() - start)
        # at least ROUND_SECONDS per engine and round: a tiny model's 30 us calls, 10 at a time,
        # measured the scheduler more than the engines (0.52x-0.92x for one artifact)
        per_round = max(1, calls // ROUNDS, min(MAX_CALLS_PER_ROUND, math.ceil(ROUND_SECONDS / max(slowest, 1e-6))))
        for _ in range(ROUNDS):  # rounds, interleaved so load changes hit every engine alike
            for key, engine in engines.items():
                for _ in range(per_round):
                    start = time.perf_counter()
                    engine.infer(feeds)
                    times[key].append(time.perf_counter() - start)
    finally:
        for engine in engines.values():
            engine.close()
    median = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    batch = len(next(iter(feeds.values())))
    return {"batch": batch, "calls": sum(len(v) for v in times.values()), "median_ms": median,
            "speedup_int8_full": median["fp32"] / median["int8_full"], "speedup_mixed": median["fp32"] / median["mixed"]}
