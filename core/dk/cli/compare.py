"""``dk compare --plugins A,B[,C]``: the same inputs through several engines, judged against the
first one with tolerances that depend on precision."""

from __future__ import annotations

from typing import Any

import click

from dk.cli.common import build_options, make_build_options


@click.command()
@click.option("--plugins", "plugin_list", required=True,
              help="Engines as PLUGIN[:PRECISION], the first is the reference: torch,ort,ort:int8.")
@build_options
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Compare on the first N evaluation samples (default: all).")
def compare(plugin_list: str, samples: int | None, **kw: Any) -> None:
    """Run the same inputs through several engines and report per-output errors.

    Reports max-abs, max-rel and mean-relative error, cosine similarity and top-1 agreement of
    each engine against the first; exits 1 when any is outside the tolerance of its precision.
    """
    from dk.cli import render
    from dk.cli.common import check_torch_export_options
    from dk.cli.options import check_option_scopes, parse_plugin_list
    from dk.errors import ToleranceExceeded

    as_json = kw.pop("as_json")
    engines = parse_plugin_list(plugin_list)
    opts = make_build_options(kw)
    check_option_scopes(opts.options, [name for name, _ in engines])
    check_torch_export_options(opts, [name for name, _ in engines])
    if opts.artifact:
        from dk.errors import UsageError

        raise UsageError("--artifact: compare builds one artifact per engine; give --model instead")
    report = compare_engines(engines, opts, samples, as_json)
    if as_json:
        render.print_json(report)
    else:
        render.rows_table(f"dk compare on {report['data']} ({report['samples']} samples), reference "
                          f"{report['reference']}", report["rows"], [
            ("engine", "engine"), ("output", "output"), ("max_abs", "max abs"), ("max_rel", "max rel"),
            ("mean_rel", "mean rel"), ("cosine", "cosine"), ("top1_agreement", "top-1 agree"),
            ("passed", "within tol."),
        ])
    if not report["passed"]:
        failed = sorted({r["engine"] for r in report["rows"] if not r["passed"]})
        first = next((f"{r['engine']} {r['output']}: {r['failures'][0]}" for r in report["rows"] if r["failures"]), "")
        raise ToleranceExceeded(f"outside tolerance: {', '.join(failed)} (vs {report['reference']})"
                                + (f"; first: {first}" if first else ""))


def compare_engines(engines: list[tuple[str, str]], opts, samples: int | None, quiet: bool) -> dict[str, Any]:
    """Build and run every (plugin, precision); compare each with the first."""
    from dk import api, pipeline
    from dk.cli import render
    from dk.testing.tolerances import compare_outputs

    outputs: list[dict] = []
    declared: list[list] = []  # each engine's output specs: a dtype other than declared fails
    data = None
    for plugin, precision in engines:
        with render.step(f"building and running {plugin} ({precision})", quiet):
            artifact = pipeline.build(plugin, precision, opts)
            with api.load_engine(plugin, artifact, opts.device, opts.options) as engine:
                if data is None:
                    data = pipeline.eval_data(opts, engine, limit=samples)
                outputs.append(pipeline.run_all(engine, data.model_inputs))
                declared.append(list(engine.outputs))
    reference_name = f"{engines[0][0]}:{engines[0][1]}"
    rows = []
    for (plugin, precision), candidate, specs in zip(engines[1:], outputs[1:], declared[1:]):
        result = compare_outputs(outputs[0], candidate, precision, declared=specs)
        rows += [{"engine": f"{plugin}:{precision}", **row} for row in comparison_rows(result)]
    count = len(next(iter(outputs[0].values())))
    return {
        "reference": reference_name,
        "data": data.name,
        "samples": count,
        "rows": rows,
        "passed": all(r["passed"] for r in rows),
    }


def comparison_rows(result) -> list[dict[str, Any]]:
    """Table rows of a :class:`~dk.testing.tolerances.ComparisonResult`, one per output."""
    rows = [
        {"output": o.name, "max_abs": o.max_abs, "max_rel": o.max_rel, "mean_rel": o.mean_rel,
         "cosine": o.cosine, "top1_agreement": o.top1, "passed": o.passed, "failures": list(o.failures)}
        for o in result.outputs.values()
    ]
    if result.failures:
        rows.append({"output": "-", "passed": False, "failures": list(result.failures)})
    return rows
