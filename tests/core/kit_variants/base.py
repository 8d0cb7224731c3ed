"""A correct ONNX Runtime backend; subclasses of :class:`Variant` break one rule each."""

from __future__ import annotations

import shutil

import numpy as np

from dk.artifacts import BuiltModel, build_artifact, model_artifact_name
from dk.engine import Engine, InputChecker
from dk.errors import DeviceError, ModelError
from dk.hooks import hookimpl
from dk.specs import PluginInfo


class OrtEngine(Engine):
    def __init__(self, name: str, artifact):
        import onnxruntime

        self.name, self.inputs, self.outputs = name, artifact.inputs, artifact.outputs
        self._check = InputChecker(self.inputs)
        try:
            self._session = onnxruntime.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - every load failure becomes one clear ModelError
            raise ModelError(f"cannot load {artifact.model_file.name}: {' '.join(str(exc).split())[:200]}") from None

    def infer(self, inputs):
        self._check(inputs)
        values = self._session.run(None, dict(inputs))
        return {spec.name: value for spec, value in zip(self.outputs, values)}


class Variant:
    """The hooks of one backend plugin named ``name``."""

    engine = OrtEngine

    def __init__(self, name: str):
        self.name = name

    @hookimpl
    def dk_describe(self, probe):
        return PluginInfo(name=self.name, kind="engine", formats_in=["onnx"], formats_out=["onnx"],
                          precisions=["fp32"], devices=["cpu"])

    @hookimpl
    def dk_export(self, request):
        from dk.onnx_io import io_specs, load_onnx, set_input_shapes
        from dk.sources import resolve_onnx

        src = resolve_onnx(request.source, request)
        model = load_onnx(src.path)
        if request.shapes or not request.dynamic_batch:
            model = set_input_shapes(model, dict(request.shapes), request.dynamic_batch)
        inputs, outputs = io_specs(model)
        name = model_artifact_name(src.model_name, src.model_meta, inputs, request.precision)

        def build(folder):
            shutil.copyfile(src.path, folder / "model.onnx")
            return BuiltModel(["model.onnx"], "onnx", "fp32", inputs, outputs)

        return build_artifact(plugin=self.name, out_dir=request.out_dir, name=name, source=src.source,
                              build_options=request.build_options(), tool_versions={},
                              model_meta=src.model_meta, build=build, force=request.force)

    @hookimpl
    def dk_load_engine(self, artifact, device):
        if device != "cpu":
            raise DeviceError(f"{self.name} runs on cpu only, not {device!r}")
        return self.engine(self.name, artifact)


class Float64Engine(OrtEngine):
    """Declares float32 outputs, returns float64."""

    def infer(self, inputs):
        return {k: v.astype(np.float64) for k, v in super().infer(inputs).items()}


class InPlaceEngine(OrtEngine):
    """Right answers, but scribbles over the caller's input afterwards (when it can)."""

    def infer(self, inputs):
        outputs = super().infer(inputs)
        for value in inputs.values():
            if value.flags.writeable:
                value *= 0.5
        return outputs


class UnwrappedLoadErrorEngine(OrtEngine):
    """Lets onnxruntime's own exception escape when the model file is corrupt."""

    def __init__(self, name: str, artifact):
        import onnxruntime

        self.name, self.inputs, self.outputs = name, artifact.inputs, artifact.outputs
        self._check = InputChecker(self.inputs)
        self._session = onnxruntime.InferenceSession(str(artifact.model_file), providers=["CPUExecutionProvider"])


def variant(name: str, engine: type[OrtEngine]) -> Variant:
    plugin = Variant(name)
    plugin.engine = engine
    return plugin


good = variant("kit-good", OrtEngine)
float64 = variant("kit-float64", Float64Engine)
inplace = variant("kit-inplace", InPlaceEngine)
unwrapped = variant("kit-unwrapped", UnwrappedLoadErrorEngine)
