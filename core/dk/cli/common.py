"""Options shared by ``dk run`` and ``dk compare`` (trtexec/polygraphy-style names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from dk.cli.options import check_ranges, parse_key_values, parse_shapes

_BUILD_OPTIONS = [
    click.option("--model", "-m", help="ONNX file, TorchScript/.pt2 file, artifact folder or module.path:factory "
                 "(default: the embedded digits model)."),
    click.option("--weights", type=click.Path(dir_okay=False), help="Weights for --model module:factory "
                 "(.pt loaded with weights_only=True, or .safetensors)."),
    click.option("--artifact", type=click.Path(file_okay=False), help="Use this existing artifact folder "
                 "instead of building one."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("dk-artifacts"),
                 show_default=True, help="Where artifacts are written."),
    click.option("--shapes", help="Input shapes, NAME:1x3x224x224[,NAME2:...]; the batch axis stays dynamic unless --static."),
    click.option("--min-shapes", help="Minimum shapes of dynamic inputs (optimisation profile)."),
    click.option("--opt-shapes", help="Optimal shapes of dynamic inputs."),
    click.option("--max-shapes", help="Maximum shapes of dynamic inputs."),
    click.option("--static", is_flag=True, help="Fix the batch axis (default: dynamic batch)."),
    click.option("--dynamic-hw", is_flag=True, help="Also keep height and width dynamic."),
    click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset for torch export."),
    click.option("--simplify", is_flag=True, help="Simplify the ONNX graph (onnxslim or onnxsim)."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda[:N], tensorrt, ..."),
    click.option("--data", type=click.Path(), help=".npz with x (inputs) [and y (labels)], or a dataset (folder of "
                 "class sub-folders, DataTool dataset.json folder, COCO .json; see docs/data.md) for calibration "
                 "and evaluation (default: the embedded model's splits)."),
    click.option("--calib-size", type=click.IntRange(1), default=128, show_default=True,
                 help="Calibration samples used for int8."),
    click.option("--method", type=click.Choice(["static", "dynamic"]), default="static", show_default=True,
                 help="int8 quantization method."),
    click.option("--option", "-o", "plugin_options", multiple=True, metavar="KEY=VALUE",
                 help="Plugin-specific option (repeatable)."),
    click.option("--force", is_flag=True, help="Rebuild even when a cached artifact matches."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout."),
]


def build_options(func: Callable) -> Callable:
    for decorator in reversed(_BUILD_OPTIONS):
        func = decorator(func)
    return func


def make_build_options(kw: dict[str, Any]):
    """BuildOptions from the parsed click keywords (pops them from ``kw``)."""
    from dk.pipeline import BuildOptions

    shapes = parse_shapes(kw.pop("shapes"))
    ranges = {k: parse_shapes(kw.pop(k), "--" + k.replace("_", "-")) for k in ("min_shapes", "opt_shapes", "max_shapes")}
    check_ranges(ranges["min_shapes"], ranges["opt_shapes"], ranges["max_shapes"])
    return BuildOptions(
        model=kw.pop("model"),
        weights=kw.pop("weights"),
        artifact=kw.pop("artifact"),
        out=kw.pop("out"),
        shapes=shapes,
        **ranges,
        static=kw.pop("static"),
        dynamic_hw=kw.pop("dynamic_hw"),
        opset=kw.pop("opset"),
        simplify=kw.pop("simplify"),
        device=kw.pop("device"),
        force=kw.pop("force"),
        options=parse_key_values(kw.pop("plugin_options")),
        data=kw.pop("data"),
        calib_size=kw.pop("calib_size"),
        method=kw.pop("method"),
    )
