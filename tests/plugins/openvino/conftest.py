"""Fixtures for the openvino plugin: the default model's IR artifacts, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openvino", reason="the openvino plugin needs OpenVINO: pip install openvino nncf")

from dk import api  # noqa: E402
from dk.artifacts import Artifact  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import ExportRequest  # noqa: E402


@pytest.fixture(scope="session")
def ov_artifacts_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("openvino-artifacts")


@pytest.fixture(scope="session")
def ov_fp32(ov_artifacts_dir) -> Artifact:
    """The default model as an fp32 IR with a dynamic batch."""
    return api.export("openvino", ExportRequest(source=parse_model_arg(None), out_dir=ov_artifacts_dir))


@pytest.fixture(scope="session")
def ov_int8(ov_artifacts_dir) -> Artifact:
    """The default model quantized by NNCF with its calibration split (the plugin's own default)."""
    pytest.importorskip("nncf", reason="int8 with the openvino plugin needs NNCF: pip install nncf")
    from dk.specs import QuantizeRequest

    return api.quantize("openvino", QuantizeRequest(source=parse_model_arg(None), out_dir=ov_artifacts_dir))
