"""``dk debug diverge|layers``: where two engines start to disagree, and what each layer's int8 costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dk.cli.common import build_options, make_build_options


@click.group()
def debug() -> None:
    """Find where engines disagree and which layers int8 hurts.

    \b
    dk debug diverge --plugins torch,ort:int8      first node whose output differs beyond tolerance
    dk debug layers  --plugin ort                  per-layer int8 sensitivity, most sensitive first
    """


@debug.command()
@click.option("--plugins", "plugin_list", required=True,
              help="Two engines as PLUGIN[:PRECISION], the first is the reference: torch,ort:int8 "
              "(onnxref: ONNX's reference evaluator).")
@build_options
@click.option("--samples", type=click.IntRange(1), default=16, show_default=True,
              help="Compare on the first N evaluation samples.")
@click.option("--per-build", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Tensors marked as outputs in each build.")
@click.option("--subgraph", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("dk-debug/first-divergence.onnx"), show_default=True,
              help="Write the graph up to the first diverging node here (for a bug report).")
@click.option("--prefix", is_flag=True, help="Cut prefix subgraphs instead of marking outputs, for engines "
              "that answer only a model's declared outputs (chosen by itself when an engine drops marked ones).")
@click.option("--mark-all", is_flag=True, help="Mark every tensor in one build instead of bisecting "
              "(slow and memory-hungry on big models; kept to measure the difference).")
def diverge(plugin_list: str, samples: int, per_build: int, subgraph: Path, prefix: bool, mark_all: bool,
            **kw: Any) -> None:
    """Bisect to the first node, in topological order, whose output differs beyond tolerance.

    Each build marks a few intermediate tensors as outputs of the same ONNX graph, builds both
    engines with their plugins, compares and narrows the range. Exits 0 when the engines agree,
    1 when a diverging node was found, 130 on Ctrl-C (after printing what was found so far).
    """
    from dk.cli import render
    from dk.cli.common import check_torch_export_options
    from dk.cli.options import check_option_scopes, parse_plugin_list
    from dk.cli.output_paths import check_output_file
    from dk.debug.diverge import diverge as run_diverge

    as_json = kw.pop("as_json")
    engines = parse_plugin_list(plugin_list)
    check_output_file(subgraph, "--subgraph", "first-divergence.onnx")
    opts = make_build_options(kw)
    check_option_scopes(opts.options, [name for name, _ in engines])
    check_torch_export_options(opts, graph_exporters(engines))
    result = run_diverge(engines, opts, samples=samples, per_build=per_build, subgraph=subgraph, prefix=prefix,
                         mark_all=mark_all, progress=(lambda _: None) if as_json else render.note)
    report = result.to_json()
    if as_json:
        render.print_json(report)
    else:
        _print_diverge(report)
    if report["status"] == "interrupted":
        raise KeyboardInterrupt  # exit 130, after what was found so far
    if report["status"] in ("found", "not-located"):
        from dk.errors import ToleranceExceeded

        where = report["culprit"]["name"] if report["culprit"] else "the outputs only"
        raise ToleranceExceeded(f"{report['candidate']} diverges from {report['reference']} first at {where}")


def graph_exporters(engines: list[tuple[str, str]]) -> list[str]:
    """The plugins whose export makes the graph that diverge builds every engine from: torch's alone
    when torch is among the engines (its ONNX export is that graph), else each engine's own."""
    names = [name for name, _ in engines]
    return ["torch"] if "torch" in names else names


def _range(clamp: list) -> str:
    low, high = clamp
    if high is None:
        return f">= {low:g}"
    return f"<= {high:g}" if low is None else f"{low:g}..{high:g}"


def _print_diverge(report: dict[str, Any]) -> None:
    from dk.cli import render

    rows = []
    for step in report["steps"]:
        for tensor, check in step["checks"].items():
            shown = tensor if check.get("clamp") is None else f"{tensor} (clamped: {_range(check['clamp'])})"
            rows.append({"step": step["step"], "tensor": shown, "max_abs": check["max_abs"],
                         "cosine": check["cosine"], "passed": check["passed"]})
    render.rows_table(f"dk debug diverge: {report['candidate']} vs {report['reference']} on {report['graph']} "
                      f"({report['samples']} samples of {report['data']}, {report['candidate_nodes']} nodes)", rows,
                      [("step", "build"), ("tensor", "output"), ("max_abs", "max abs"), ("cosine", "cosine"),
                       ("passed", "within tol.")])
    _print_outcome(report)
    if report["interrupted_during"] == "torch export check":
        render.out.print("interrupted while checking the torch engine against its own ONNX export, after the "
                         "search had finished", highlight=False)


def _print_outcome(report: dict[str, Any]) -> None:
    """What the search found (``search_status``: also when Ctrl-C came only after it)."""
    from dk.cli import render

    status, builds = report["search_status"], report["builds"]
    if report.get("torch_export") and not report["torch_export"]["passed"]:
        render.out.print("the torch engine and its own ONNX export disagree at the outputs: the export itself "
                         "diverges, before any node compared here", highlight=False)
    if status == "no-divergence":
        render.out.print(f"no divergence beyond tolerance ({report['tolerance_precision']}) at the outputs; "
                         f"{builds} build(s)", highlight=False)
        return
    if status == "interrupted":
        render.out.print(f"interrupted after {builds} build(s): the first divergence lies after "
                         f"{report['last_good'] or 'the inputs'}" +
                         (f" and at or before {report['steps'][-1]['first_bad_so_far']}"
                          if report["steps"] and report["steps"][-1]["first_bad_so_far"] else ""), highlight=False)
        return
    culprit = report["culprit"]
    if culprit is None:
        render.out.print(f"the outputs diverge but no compared node does ({builds} builds)", highlight=False)
        return
    shapes = ", ".join(f"{i['name']} {i['shape']}" for i in culprit["inputs"])
    error = culprit["error"] or {}
    out_errors = "; ".join(f"{k}: max abs {v['max_abs']:.3g}, cosine {v['cosine']:.6f}"
                           for k, v in report["outputs"].items())
    render.out.print(
        f"first divergence: {culprit['name']} ({culprit['op']}), inputs {shapes}\n"
        f"  there: max abs {error.get('max_abs', float('nan')):.3g}, cosine {error.get('cosine', float('nan')):.6f}"
        f" ({'; '.join(error.get('failures', []))})\n"
        f"  at the outputs: {out_errors}\n"
        f"  last agreeing node: {report['last_good'] or 'the inputs'}{_proof(report)}; {builds} builds; subgraph: "
        f"{report['subgraph'] or _why_no_subgraph(report)}", highlight=False)


def check_layers_options(opts, plugin: str) -> None:
    """The build options ``dk debug layers`` would ignore (it quantizes the model afresh, in a temp
    folder, once per node), and --simplify or --opset where the torch exporter has no part, as ``dk run`` refuses them."""
    from dk.cli.common import check_torch_export_options
    from dk.cli.stage_options import refuse_unread

    refuse_unread("dk debug layers", {"artifact": opts.artifact, "force": opts.force}, {
        "artifact": "it quantizes the original model once per weighted node; give --model instead",
        "force": "every quantization is built afresh in a temp folder",
    })
    check_torch_export_options(opts, [plugin])


def _proof(report: dict[str, Any]) -> str:
    """How the last agreeing node is known to agree when it was not compared itself."""
    by = report.get("last_good_proven_by")
    return f" (not compared itself: {by}, computed from it, agrees)" if by else ""


def _why_no_subgraph(report: dict[str, Any]) -> str:
    if report["subgraph_error"]:
        return f"not written ({report['subgraph_error']})"
    return "not written (interrupted)" if report["status"] == "interrupted" else "not written"


@debug.command()
@click.option("--plugin", "-p", required=True, help="The engine that quantizes (ort; any plugin whose quantize "
              "stage takes -o exclude_nodes=...).")
@click.option("--precision", type=click.Choice(["int8"]), default="int8", show_default=True, help="Precision probed.")
@build_options
@click.option("--only-int8", is_flag=True, help="Quantize only one node at a time (default: all but one).")
@click.option("--samples", type=click.IntRange(1), default=None, help="Score on the first N evaluation samples.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write a report with a bar chart: report.html (self-contained) or report.md.")
def layers(plugin: str, precision: str, only_int8: bool, samples: int | None, report_path: str | None,
           **kw: Any) -> None:
    """Per-layer int8 sensitivity: accuracy and output error with only that node in float (or, with
    --only-int8, only that node in int8), most sensitive first. One quantization per weighted node."""
    from dk.cli import render
    from dk.debug.sensitivity import layers_report

    from dk import api
    from dk.cli.options import check_option_scopes

    as_json = kw.pop("as_json")
    opts = make_build_options(kw)
    check_option_scopes(opts.options, [plugin])
    check_layers_options(opts, plugin)
    api.check_precision(plugin, precision, "dk debug layers measures int8 only: choose another plugin")
    if report_path:
        from dk.report import check_output_path
        from dk.report.plots import _pyplot

        from dk.cli.output_paths import check_output_file

        check_output_path(report_path, "--report")
        check_output_file(report_path, "--report", "layers.html")
        _pyplot()  # matplotlib missing: say so before the quantizations, not after
    report = layers_report(plugin, opts, only_int8=only_int8, samples=samples,
                           progress=(lambda _: None) if as_json else render.note)
    if report_path:
        from dk.report.sensitivity import write_sensitivity_report

        report["report"] = [str(p) for p in write_sensitivity_report(report, report_path)]
        if not as_json:
            render.note(f"wrote {', '.join(report['report'])}")
    if as_json:
        render.print_json(report)
        return
    render.rows_table(
        f"dk debug layers --plugin {plugin}: {report['mode']} ({report['samples']} samples of {report['data']}; "
        f"fp32 accuracy {report['accuracy_fp32']:.4f}, all int8 {report['accuracy_int8']:.4f})",
        report["layers"], [("rank", "rank"), ("node", "node"), ("op", "op"), ("accuracy", "accuracy"),
                           ("mean_rel", "mean rel err vs fp32"), ("cosine", "cosine")])


def quantize_within_budget(plugin: str, opts: Any, budget: str, as_json: bool) -> dict[str, Any]:
    """``dk run quantize --max-accuracy-drop``: the table of :func:`dk.debug.mixed_precision.quantize_within_budget`."""
    from dk.cli import render
    from dk.debug.mixed_precision import quantize_within_budget as run_budget

    result = run_budget(plugin, opts, budget, progress=(lambda _: None) if as_json else render.note)
    if not as_json:
        render.artifact_summary(f"dk run quantize --plugin {plugin} --max-accuracy-drop {budget}", result["artifact"])
        speed = result["speed"]
        render.out.print(
            f"budget {result['budget']}: fp32 {result['accuracy_fp32']:.4f}, all int8 {result['accuracy_int8_full']:.4f}"
            f", this artifact {result['accuracy']:.4f} (drop {result['drop']:.4f}) on {result['samples']} samples of "
            f"{result['data']}\nfloat nodes ({len(result['float_nodes'])}): {', '.join(result['float_nodes']) or 'none'}"
            f"\nspeed-up over fp32 (batch {speed['batch']}, median of {speed['calls']} interleaved calls): all int8 "
            f"{speed['speedup_int8_full']:.2f}x, this artifact {speed['speedup_mixed']:.2f}x; {result['trials']} "
            "quantizations tried" + ("" if result["searched"] or not result["float_nodes"] else
                                     " (the float nodes an earlier run chose for this budget, scored again)"),
            highlight=False)
    return result
