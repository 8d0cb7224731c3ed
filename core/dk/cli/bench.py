"""``dk run bench``: one engine or a sweep (engines x precisions x input sizes x batch sizes), with
hardware statistics, a result document (JSON/CSV) and an optional regression gate."""

from __future__ import annotations

import sys
from typing import Any

from dk.cli import render
from dk.errors import DkError


class Interrupted(DkError):
    """Ctrl-C during a sweep: the runs so far were written, marked incomplete."""

    exit_code = 130


class Regressed(DkError):
    """``--baseline``: a metric got worse by more than ``--max-regression``."""

    exit_code = 1


class RunsFailed(DkError):
    """Some runs of the sweep failed (each is in the results with its error)."""

    exit_code = 1


class NothingMeasured(DkError):
    """Every run of the sweep was skipped (a fixed batch other than the one asked for, ...)."""

    exit_code = 1


def bench(plugin: str | None, precision: str | None, opts: Any, kw: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """Plan, run, write and gate a benchmark; returns the result document."""
    from dk.bench import environment, results
    from dk.bench.execution import new_document
    from dk.bench.hwstats import HwSampler
    from dk.bench.latency import TimedRegion
    from dk.bench.runners import get_runner
    from dk.bench.sweep import parse_batches, parse_entry, parse_sizes, plan_sweep, split_list
    from dk.bench.targets import parse_targets
    from dk.cli.options import check_option_scopes
    from dk.plugins import get_plugin_manager

    _check_outputs(kw)
    plugins = split_list(kw.get("plugins"), "--plugins") or ([plugin] if plugin else [])
    precisions = split_list(kw.get("precisions"), "--precisions") or [precision or _default_precision(opts)]
    reference = parse_entry(kw["reference"]) if kw.get("reference") not in (None, "none") else None
    manager = get_plugin_manager()
    plan = plan_sweep(
        plugins, precisions, manager, reference=reference,
        batches=parse_batches(kw.get("batches"), kw.get("batch") or 1), input_sizes=parse_sizes(kw.get("input_sizes")),
        warmup=kw.get("warmup", 20), iterations=kw.get("iterations", 200), duration=kw.get("duration"),
        region=TimedRegion(preprocess=bool(kw.get("include_preprocess")), copies=kw.get("include_copies", True)),
        hw_interval=float(kw.get("hw_interval") if kw.get("hw_interval") is not None else 0.1),
        targets=parse_targets(kw.get("targets")), profile_layers=bool(kw.get("profile_layers")),
    )
    check_option_scopes(opts.options, [entry.engine for entry in plan.all_entries])
    _check_build(plan, opts)
    max_regression = results.parse_fraction(kw.get("max_regression") or "5%")
    baseline = results.load(kw["baseline"]) if kw.get("baseline") else None  # fail before running
    manager.load_all()  # platform plugins: hardware statistics and the environment record
    runner = get_runner(*_runner_choice(kw), manager, {"shared_dir": kw.get("shared_dir")})
    document = new_document(plan, opts, environment.collect(manager), ["dk", *sys.argv[1:]])
    document["runner"] = runner.describe()
    sampler = HwSampler(plan.hw_interval, manager) if plan.hw_interval > 0 and runner.local else None
    interrupted = False
    with _ProgressBar(plan.total_runs, enabled=not as_json and render.err.is_terminal) as bar:
        try:
            if sampler is not None:
                sampler.start()
            runner.run(plan, opts, document, sampler, bar)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if sampler is not None:
                sampler.stop()
    _finish(document, sampler, interrupted)
    regressions = _gate(document, baseline, max_regression, kw["baseline"]) if baseline and not interrupted else []
    _write(document, kw)
    if not as_json:
        _print(document, regressions, max_regression)
    elif regressions:
        render.note(f"{len(regressions)} regression(s) beyond {max_regression:.1%}: see 'regressions' in the JSON")
    try:
        _raise_for(document, regressions, max_regression, kw)
    except DkError as exc:
        exc.result = document  # --json: the whole document comes with the error
        raise
    return document


def _default_precision(opts: Any) -> str:
    """fp32, or the precision of ``--artifact`` (which is benchmarked as it is)."""
    from dk.cli.common import artifact_precision

    return artifact_precision(opts) or "fp32"


def _check_build(plan: Any, opts: Any) -> None:
    """--simplify or --opset where the torch exporter has no part; an entry whose precision is not
    the --artifact's."""
    from dk.cli.common import check_artifact_precision, check_opset, check_simplify

    engines = [entry.engine for entry in plan.all_entries]
    check_simplify(opts, engines)
    check_opset(opts, engines)
    _check_sizes_of_torch_model(plan, opts)
    for entry in plan.all_entries:
        check_artifact_precision(opts, entry.engine, entry.precision, entry.label)


def _check_sizes_of_torch_model(plan: Any, opts: Any) -> None:
    """--input-sizes re-export a torch model at each size, which needs its input named and shaped
    once (--shapes or --input-size): say so before every cell fails with the same error."""
    from dk.errors import UsageError

    if not plan.input_sizes or opts.artifact or opts.shapes or (opts.meta.get("preprocessing") or {}).get("size"):
        return
    source = opts.source()
    if source.kind.startswith("torch"):
        h, w = plan.input_sizes[0]
        raise UsageError(f"--input-sizes: the {source.kind} model {source.location} needs its input shape once to "
                         f"re-export it at each size: add --input-size {h}x{w} (or --shapes input:1x3x{h}x{w})")


def _check_outputs(kw: dict) -> None:
    """--output and --csv can be written, before the sweep runs (a bad path must not lose its results)."""
    from dk.cli.output_paths import check_distinct, check_output_file

    if kw.get("output"):
        check_output_file(kw["output"], "--output", "results.json")
    if kw.get("csv"):
        check_output_file(kw["csv"], "--csv", "results.csv")
    check_distinct({"--output": kw.get("output"), "--csv": kw.get("csv")})


def _runner_choice(kw: dict) -> tuple[str | None, str | None]:
    """(runner name, address) from ``--runner``/``--ray``; ``--shared-dir`` goes to fleet runners."""
    from dk.errors import UsageError

    name, address = kw.get("runner"), kw.get("ray_address")
    if address is not None:
        if name not in (None, "ray"):
            raise UsageError(f"--ray runs the sweep on Ray; it cannot be combined with --runner {name}")
        name = "ray"
    if kw.get("shared_dir") and name in (None, "local"):
        raise UsageError("--shared-dir is for sweeps on a cluster (--ray ADDRESS); a local sweep builds in --out")
    return name, address


def _finish(document: dict, sampler: Any, interrupted: bool) -> None:
    document["interrupted"] = interrupted
    document["complete"] = not interrupted
    document["hw"] = sampler.to_json() if sampler is not None else None
    document["stage"] = "bench"
    runs = document["runs"]
    if len(runs) == 1:  # the single-run shortcut: that run's numbers at the top level
        run = runs[0]
        document.update(plugin=run["engine"], precision=run["precision"], latency=run.get("latency"),
                        accuracy=run.get("accuracy"), artifact=run.get("artifact"))


def _write(document: dict, kw: dict) -> None:
    from dk.bench import results

    if kw.get("output"):
        results.write_json(kw["output"], document)
    if kw.get("csv"):
        results.write_csv(kw["csv"], document)


def _gate(document: dict, baseline: dict, max_regression: float, path: str) -> list:
    from dk.bench import results

    found, matched = results.compare(document, baseline, max_regression)
    document["baseline"] = {"path": path, "max_regression": max_regression, "matched_runs": matched,
                            "regressions": [r.to_json() for r in found]}
    return found


def _raise_for(document: dict, regressions: list, max_regression: float, kw: dict) -> None:
    runs = document["runs"]
    where = f" to {kw['output']}" if kw.get("output") else ""
    if document["interrupted"]:
        raise Interrupted(f"interrupted: {len(runs)} run(s) so far written{where}, marked incomplete")
    gate = document.get("baseline")
    if gate is not None and gate["matched_runs"] == 0:
        raise Regressed(f"no run matches the baseline {gate['path']} (same engine, precision, batch and input "
                        "shape); nothing was compared")
    if regressions:
        raise Regressed(f"{len(regressions)} metric(s) regressed by more than {max_regression:.1%} against "
                        f"{kw['baseline']}")
    failed = [r for r in runs if r["status"] == "failed"]
    if failed:
        from dk.cli.bench_tables import not_ok_groups
        from dk.report.plots import sweeps_sizes

        first = next(g for g in not_ok_groups(runs, sweeps_sizes(document)) if g["status"] == "failed")
        if len(runs) == 1:
            raise RunsFailed(f"{first['what']} failed: {first['error']}")
        raise RunsFailed(f"{len(failed)} of {len(runs)} run(s) failed; first: {first['what']}: {first['error']}")
    if runs and all(r["status"] == "skipped" for r in runs):
        from dk.cli.bench_tables import not_ok_groups
        from dk.report.plots import sweeps_sizes

        why = "; ".join(f"{g['what']}: {g['error']}" for g in not_ok_groups(runs, sweeps_sizes(document)))
        raise NothingMeasured(f"nothing was measured, every run was skipped: {why}")


class _ProgressBar:
    """A rich progress bar on stderr, advanced once per run; silent when disabled."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self._progress = self._task = None
        self._started = False

    def __enter__(self) -> "_ProgressBar":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=render.err, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("benchmarking", total=self.total)
        return self

    def __call__(self, description: str) -> None:
        if self._progress is None:
            return
        if self._started:
            self._progress.advance(self._task)
        self._started = True
        self._progress.update(self._task, description=f"benchmarking {description}")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


def _print(document: dict, regressions: list, max_regression: float) -> None:
    from dk.cli.bench_tables import print_tables

    print_tables(document, regressions, max_regression)
