"""``dk run STAGE --plugin NAME``: export, quantize, infer, bench, or all of them."""

from __future__ import annotations

from typing import Any

import click

from dk.cli.common import build_options, make_build_options
from dk.cli.options import Seconds

STAGES = ("export", "quantize", "infer", "bench", "all")


@click.command()
@click.argument("stage", type=click.Choice(STAGES))
@click.option("--plugin", "-p", help="The plugin that does the work (see 'dk doctor').")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Target precision (default: fp32; int8 for quantize; with --artifact: the artifact's). "
              "Not for all, which builds fp32 and int8.")
@build_options
@click.option("--max-accuracy-drop", help="quantize: keep the fewest nodes in float so that accuracy drops at most "
              "this much: 1% (points) or 1%rel (of fp32); see docs/debug.md.")
@click.option("--input", "input_path", type=click.Path(),
              help="infer: .npy (one input), .npz (arrays by input name), an image, a folder of images or a "
              "video (.mp4); default: eval samples.")
@click.option("--camera", type=click.IntRange(0), help="infer: read frames from camera N (needs OpenCV).")
@click.option("--frames", type=click.IntRange(1), help="infer: stop a video or camera after N frames.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="infer/bench batch size.")
@click.option("--iterations", type=click.IntRange(1), default=200, show_default=True, help="bench: timed calls.")
@click.option("--warmup", type=click.IntRange(0), default=20, show_default=True, help="bench: untimed calls first.")
@click.option("--duration", type=Seconds(0, min_open=True), metavar="S",
              help="bench: time for this many seconds (more than 0) instead of --iterations (bench only; all "
              "times --iterations).")
@click.option("--reference", default=None,
              help="all: reference engine for parity and speed-up (default torch; 'none' to skip). "
              "bench: ENGINE:PRECISION for speed-up (default: the first of the sweep).")
@click.option("--plugins", help="bench: several engines, e.g. torch,ort or ort:int8 (instead of --plugin).")
@click.option("--precisions", help="bench: precisions to sweep, e.g. fp32,int8.")
@click.option("--batches", help="bench: batch sizes to sweep, e.g. 1,4,8,16,32,64.")
@click.option("--input-sizes", help="bench: input sizes to sweep (HxW or one size), e.g. 224,160x120.")
@click.option("--include-preprocess/--exclude-preprocess", default=False, show_default=True,
              help="bench: time pre-processing with inference.")
@click.option("--include-copies/--exclude-copies", default=True, show_default=True,
              help="bench: time host<->device copies (where the engine can separate them).")
@click.option("--hw-interval", type=Seconds(0), metavar="S", default=0.1, show_default=True,
              help="bench: hardware statistics every S seconds (0: off).")
@click.option("--output", type=click.Path(), help="bench: write the results (JSON) here. infer: folder for "
              "results.json (CSV for videos) and rendered images/videos.")
@click.option("--csv", type=click.Path(dir_okay=False), help="bench: write one CSV row per run here.")
@click.option("--baseline", type=click.Path(dir_okay=False), help="bench: compare with this results JSON.")
@click.option("--max-regression", default="5%", show_default=True,
              help="bench: allowed worsening of latency, throughput or accuracy against --baseline: 5% or "
              "0.05 (a bare number above 1 is refused: write 5% for five percent).")
@click.option("--profile-layers", is_flag=True, help="bench: per-layer times like trtexec --dumpProfile "
              "(engines with a layer profiler, e.g. trt).")
@click.option("--runner", help="bench: who runs the sweep's cells: local (default) or a plugin's runner (ray).")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="bench: run the sweep on a Ray cluster: auto, local (a throwaway one here) or HOST:PORT "
              "(needs dk-plugin-ray; same as --runner ray).")
@click.option("--targets", help="bench: run every cell on each of these fleet targets, e.g. cuda-sm90,rpi4 "
              "(see 'dk doctor --ray-resources').")
@click.option("--shared-dir", type=click.Path(file_okay=False),
              help="bench --ray: build artifacts in this folder, seen by every node, instead of shipping them.")
def run(stage: str, plugin: str, precision: str | None, **kw: Any) -> None:
    """Run one stage of the pipeline with one plugin.

    \b
    dk run export   --plugin ort [--precision fp16] [--shapes input:1x1x8x8 | --static]
    dk run quantize --plugin ort [--data calib.npz] [--method dynamic]
    dk run infer    --plugin ort [--input x.npy | img.png | folder/ | clip.mp4] [--output DIR]
    dk run bench    --plugin ort [--batch 8] [--iterations 500]
    dk run bench    --plugins torch,ort --precisions fp32,int8 --batches 1,8,32 --output results.json
    dk run bench    --plugins ort,openvino --ray auto --targets cpu-x86_64,cpu-aarch64
    dk run all      --plugin ort      export + int8 + parity + bench, one table
    """
    from dk.cli.stage_options import check_stage_options

    as_json = kw.pop("as_json")
    check_stage_options(stage, precision, {**kw, "plugin": plugin})
    if not plugin and not (stage == "bench" and kw.get("plugins")):
        from dk.errors import UsageError

        raise UsageError("name the plugin with --plugin NAME (see 'dk doctor')")
    opts = make_build_options(kw)
    _check_build(stage, plugin, precision, opts, kw)
    if stage != "bench":  # a sweep checks against its engines once they are known
        from dk.cli.options import check_option_scopes

        check_option_scopes(opts.options, [plugin] + ([kw["reference"] or "torch"] if stage == "all" else []))
    from dk.cli import stages

    if stage == "export":
        result = stages.export(plugin, precision or "fp32", opts, as_json)
    elif stage == "quantize" and kw.get("max_accuracy_drop") is not None:  # '' is a bad budget, not none
        from dk.cli.debug import quantize_within_budget

        result = quantize_within_budget(plugin, opts, kw["max_accuracy_drop"], as_json)
    elif stage == "quantize":
        result = stages.quantize(plugin, precision or "int8", opts, as_json)
    elif stage == "infer":
        from dk.cli.infer import infer

        result = infer(plugin, precision or "fp32", opts, kw, as_json)
    elif stage == "bench":
        from dk.cli.bench import bench

        result = bench(plugin, precision, opts, kw, as_json)
    else:
        from dk.cli.run_all import run_all

        result = run_all(plugin, opts, kw["reference"], kw["batch"], kw["warmup"], kw["iterations"], as_json)
    if as_json:
        from dk.cli.render import print_json

        print_json(result)


def _check_build(stage: str, plugin: str | None, precision: str | None, opts: Any, kw: dict[str, Any]) -> None:
    """--simplify or --opset where the torch exporter has no part, and a --precision that is not the --artifact's; a sweep
    (bench) checks each of its engines itself."""
    from dk.cli.common import check_artifact_precision, check_opset, check_simplify

    if stage == "bench":
        return
    check_simplify(opts, [plugin])
    check_opset(opts, [plugin])
    if stage == "infer":
        check_artifact_precision(opts, plugin, precision)
