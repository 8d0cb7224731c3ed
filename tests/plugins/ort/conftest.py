"""Fixtures for the ort plugin: artifacts built once per session, and a helper to wrap any ONNX
file as another plugin's artifact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the ort plugin needs onnxruntime: pip install onnxruntime")

from dk import api  # noqa: E402
from dk.artifacts import Artifact, BuiltModel, SourceInfo, build_artifact, sha256_file  # noqa: E402
from dk.onnx_io import io_specs  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import ExportRequest, QuantizeRequest, TensorSpec  # noqa: E402


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ort-artifacts")


@pytest.fixture(scope="session")
def fp32_artifact(artifacts_dir) -> Artifact:
    """The default model exported by ort (dynamic batch, level extended, with an .ort file)."""
    request = ExportRequest(source=parse_model_arg(None), out_dir=artifacts_dir, options={"format": "ort"})
    return api.export("ort", request)


@pytest.fixture(scope="session")
def int8_artifact(artifacts_dir) -> Artifact:
    """The default model quantized statically with its calibration split."""
    return api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=artifacts_dir))


@pytest.fixture
def foreign_onnx_artifact():
    """Wrap an ONNX file as another plugin's artifact: ``foreign_onnx_artifact(out_dir, path)``."""
    return _foreign_onnx_artifact


def _foreign_onnx_artifact(out_dir: Path, onnx_path: Path, plugin: str = "torch") -> Artifact:
    """Wrap an ONNX file (and its siblings) as another plugin's ``onnx`` artifact, unchecked."""
    import onnx

    def build(folder: Path) -> BuiltModel:
        for sibling in onnx_path.parent.iterdir():
            if sibling.is_file():
                shutil.copy(sibling, folder / sibling.name)
        try:
            inputs, outputs = io_specs(onnx.load(str(onnx_path), load_external_data=False))
        except Exception:  # a deliberately broken file: the specs do not matter
            inputs, outputs = [TensorSpec("input", ("batch", 1, 8, 8))], [TensorSpec("logits", ("batch", 10))]
        return BuiltModel([onnx_path.name], "onnx", "fp32", inputs, outputs)

    return build_artifact(
        plugin=plugin, out_dir=out_dir, name=onnx_path.stem, source=SourceInfo("onnx", str(onnx_path),
        sha256_file(onnx_path)), build_options={}, tool_versions={}, model_meta={}, build=build,
    )
