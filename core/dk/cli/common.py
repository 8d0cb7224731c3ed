"""Options shared by ``dk run`` and ``dk compare`` (trtexec/polygraphy-style names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from dk.cli.options import check_ranges, parse_key_values
from dk.shapes import parse_shapes

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
    click.option("--opset", type=int, help="ONNX opset of the torch export (default 17); torch models only."),
    click.option("--simplify", is_flag=True, help="Simplify the ONNX graph (onnxslim or onnxsim)."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda[:N], tensorrt, ..."),
    click.option("--data", type=click.Path(), help=".npz with x (inputs) [and y (labels)], or a dataset (folder of "
                 "class sub-folders, DataTool dataset.json folder, COCO .json; see docs/data.md) for calibration "
                 "and evaluation (default: the embedded model's splits)."),
    click.option("--calib-size", type=click.IntRange(1), default=128, show_default=True,
                 help="Calibration samples used for int8."),
    click.option("--method", type=click.Choice(["static", "dynamic"]), default="static", show_default=True,
                 help="int8 quantization method."),
    click.option("--task", help="What the model does: classification, detection (written into the artifact's "
                 "manifest; same as -o task=...)."),
    click.option("--labels", type=click.Path(dir_okay=False), help="Class labels file, one name a line."),
    click.option("--mean", help="Per-channel mean subtracted after --scale, e.g. 0.485,0.456,0.406."),
    click.option("--std", help="Per-channel std divided by after the mean, e.g. 0.229,0.224,0.225."),
    click.option("--scale", type=float, help="Pixel scale before mean/std (default 1/255; 1 for 0..255 mean/std)."),
    click.option("--channel-order", type=click.Choice(["rgb", "bgr", "gray"]), help="Channel order the model "
                 "expects (default: rgb, gray for 1 channel)."),
    click.option("--layout", type=click.Choice(["NCHW", "NHWC"], case_sensitive=False), help="Input layout."),
    click.option("--resize", type=click.Choice(["stretch", "letterbox", "center-crop"]),
                 help="How images are fitted to the input size (default stretch)."),
    click.option("--input-size", help="Image size the model takes, SIZE or HxW (e.g. 224); images are resized to "
                 "it, also for a --dynamic-hw model; a module:factory without --shapes gets input:1x3xHxW."),
    click.option("--model-meta", type=click.Path(dir_okay=False), help="JSON file with task, labels and "
                 "preprocessing (see docs/cli.md); the options above win over it."),
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
    options = parse_key_values(kw.pop("plugin_options"))
    meta = _declared_meta(kw, options)
    return BuildOptions(
        meta=meta,
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
        options=options,
        data=kw.pop("data"),
        calib_size=kw.pop("calib_size"),
        method=kw.pop("method"),
    )


def _declared_meta(kw: dict[str, Any], options: dict[str, str]) -> dict[str, Any]:
    """The model metadata options (popped from ``kw``); ``-o task=X`` is taken as ``--task X`` for
    every plugin (and removed from the plugin options)."""
    from dk.errors import UsageError
    from dk.model_meta import declared_meta

    task = kw.pop("task")
    if "task" in options:
        option_task = options.pop("task")
        if task is not None and task != option_task:
            raise UsageError(f"--task {task} and -o task={option_task} disagree; give one")
        task = option_task
    return declared_meta(
        meta_file=kw.pop("model_meta"), task=task, labels=kw.pop("labels"), mean=kw.pop("mean"), std=kw.pop("std"),
        scale=kw.pop("scale"), channel_order=kw.pop("channel_order"), layout=kw.pop("layout"),
        resize=kw.pop("resize"), input_size=kw.pop("input_size"),
    )


def already_onnx(opts, plugins: list[str]) -> str | None:
    """What the model is when the torch exporter has no part in building it ("an ONNX file", "an
    existing artifact", "the embedded ONNX model"), else None: a torch model, or the default model
    exported by ``--plugin torch``."""
    kind = "artifact" if opts.artifact else opts.source().kind
    if kind.startswith("torch") or (kind == "default" and set(plugins) == {"torch"}):
        return None
    return {"onnx": "an ONNX file", "artifact": "an existing artifact", "default": "the embedded ONNX model"}[kind]


def check_simplify(opts, plugins: list[str]) -> None:
    """``--simplify`` only where something simplifies: the torch exporter, which exports torch
    models (and, as ``--plugin torch``, the default model). Elsewhere it would be recorded in the
    manifest as done while nothing was simplified."""
    from dk.errors import UsageError

    if not opts.simplify or (what := already_onnx(opts, plugins)) is None:
        return
    raise UsageError(f"--simplify: only the torch exporter simplifies, and the model here is {what}; drop "
                     "--simplify, or simplify the ONNX file yourself first (onnxslim in.onnx out.onnx)")


def check_opset(opts, plugins: list[str]) -> None:
    """``--opset`` only where the torch exporter writes the ONNX: a model that is ONNX already keeps
    its file's opset, and recording another one would be false."""
    from dk.errors import UsageError

    if opts.opset is None or (what := already_onnx(opts, plugins)) is None:
        return
    raise UsageError(f"--opset {opts.opset}: the opset applies to torch exports only, and the model here is "
                     f"{what}, which keeps its own opset; drop --opset (convert the file yourself to change it)")


def check_torch_export_options(opts, plugins: list[str]) -> None:
    """``--simplify`` and ``--opset`` only where the torch exporter writes the ONNX (see
    :func:`check_simplify` and :func:`check_opset`)."""
    check_simplify(opts, plugins)
    check_opset(opts, plugins)


def artifact_precision(opts) -> str | None:
    """The precision of ``--artifact`` (None without one)."""
    if not opts.artifact:
        return None
    from dk.artifacts import Artifact

    return Artifact.load(opts.artifact).precision


def check_artifact_precision(opts, engine: str, precision: str | None, what: str | None = None) -> None:
    """A precision asked for explicitly must be the ``--artifact``'s (the artifact is used as it
    is; the torch engine also runs fp16 from an fp32 artifact). ``what`` names the request."""
    from dk.errors import UsageError

    held = artifact_precision(opts)
    if held is None or precision is None or precision == held:
        return
    if engine == "torch" and (precision, held) == ("fp16", "fp32"):
        return
    raise UsageError(f"{what or '--precision ' + precision}: the artifact {opts.artifact} is {held} and is used as "
                     f"it is; ask for {held} (or give no precision), or give a {precision} artifact")
