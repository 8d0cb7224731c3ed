"""``dk run STAGE --plugin NAME``: export, quantize, infer, bench, or all of them."""

from __future__ import annotations

from typing import Any

import click

from dk.cli.common import build_options, make_build_options

STAGES = ("export", "quantize", "infer", "bench", "all")


@click.command()
@click.argument("stage", type=click.Choice(STAGES))
@click.option("--plugin", "-p", required=True, help="The plugin that does the work (see 'dk doctor').")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Target precision (default: fp32; int8 for quantize).")
@build_options
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="infer: .npy (one input) or .npz (arrays by input name); default: eval samples.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="infer/bench batch size.")
@click.option("--iterations", type=click.IntRange(1), default=200, show_default=True, help="bench: timed calls.")
@click.option("--warmup", type=click.IntRange(0), default=20, show_default=True, help="bench: untimed calls first.")
@click.option("--duration", type=float, help="bench: time for this many seconds instead of --iterations.")
@click.option("--reference", default="torch", show_default=True,
              help="all: reference engine for parity and speed-up ('none' to skip).")
def run(stage: str, plugin: str, precision: str | None, **kw: Any) -> None:
    """Run one stage of the pipeline with one plugin.

    \b
    dk run export   --plugin ort [--precision fp16] [--shapes input:1x1x8x8 | --static]
    dk run quantize --plugin ort [--data calib.npz] [--method dynamic]
    dk run infer    --plugin ort [--input x.npy] [--batch 4]
    dk run bench    --plugin ort [--batch 8] [--iterations 500]
    dk run all      --plugin ort      export + int8 + parity + bench, one table
    """
    as_json = kw.pop("as_json")
    opts = make_build_options(kw)
    from dk.cli import stages

    if stage == "export":
        result = stages.export(plugin, precision or "fp32", opts, as_json)
    elif stage == "quantize":
        result = stages.quantize(plugin, precision or "int8", opts, as_json)
    elif stage == "infer":
        result = stages.infer(plugin, precision or "fp32", opts, kw["input_path"], kw["batch"], as_json)
    elif stage == "bench":
        result = stages.bench(plugin, precision or "fp32", opts, kw["batch"], kw["warmup"], kw["iterations"],
                              kw["duration"], as_json)
    else:
        from dk.cli.run_all import run_all

        result = run_all(plugin, opts, kw["reference"], kw["batch"], kw["warmup"], kw["iterations"], as_json)
    if as_json:
        from dk.cli.render import print_json

        print_json(result)
