"""A complete third-party dk backend: ONNX in, onnx.reference.ReferenceEvaluator as the engine."""

import shutil

from dk.artifacts import BuiltModel, artifact_name, build_artifact, input_hw
from dk.engine import Engine, InputChecker
from dk.hooks import hookimpl
from dk.specs import PluginInfo


#: -o KEY=VALUE options this plugin reads (key -> meaning): none; unknown keys are refused.
OPTIONS = {}


@hookimpl
def dk_describe(probe):
    return PluginInfo(name="onnxref", kind="engine", formats_in=["onnx"], formats_out=["onnx"],
                      precisions=["fp32"], devices=["cpu"])


@hookimpl
def dk_export(request):
    import onnx
    from dk.onnx_io import io_specs, load_onnx
    from dk.sources import resolve_onnx

    from dk.plugin_options import refuse_unknown

    refuse_unknown("onnxref", request.options, OPTIONS)
    src = resolve_onnx(request.source, request)  # default model, ONNX file, artifact or torch
    inputs, outputs = io_specs(load_onnx(src.path))

    def build(folder):
        shutil.copyfile(src.path, folder / "model.onnx")
        return BuiltModel(["model.onnx"], "onnx", "fp32", inputs, outputs)

    return build_artifact(
        plugin="onnxref", out_dir=request.out_dir, build=build, force=request.force,
        name=artifact_name(src.model_name, input_hw(inputs[0]), "fp32", source_tag=src.source.tag),
        source=src.source,
        build_options=request.build_options(), tool_versions={"onnx": onnx.__version__},
        model_meta=src.model_meta,
    )


class ReferenceEngine(Engine):
    def __init__(self, artifact):
        from dk.onnx_io import load_onnx
        from onnx.reference import ReferenceEvaluator

        self.name, self.inputs, self.outputs = "onnxref", artifact.inputs, artifact.outputs
        self._check = InputChecker(self.inputs)
        # load_onnx turns a corrupt or truncated file into one clear dk.errors.ModelError
        self._session = ReferenceEvaluator(load_onnx(artifact.model_file))

    def infer(self, inputs):
        self._check(inputs)
        results = self._session.run(None, dict(inputs))
        return {spec.name: value for spec, value in zip(self.outputs, results)}


@hookimpl
def dk_load_engine(artifact, device, options):
    from dk.errors import DeviceError
    from dk.plugin_options import refuse_unknown

    refuse_unknown("onnxref", options, OPTIONS)
    if device != "cpu":
        raise DeviceError(f"onnxref runs on cpu only, not {device!r}")
    return ReferenceEngine(artifact)
