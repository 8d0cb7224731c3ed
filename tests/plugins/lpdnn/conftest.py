"""Fixtures for the lpdnn plugin: the default model's ort artifact served by dk serve on loopback."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="the served engine is ort's: pip install onnxruntime")
pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")
pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

from dk import api  # noqa: E402
from dk.sources import parse_model_arg  # noqa: E402
from dk.specs import ExportRequest  # noqa: E402


@pytest.fixture(scope="session")
def ort_artifact(tmp_path_factory):
    return api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path_factory.mktemp("lpdnn-ort")))


@pytest.fixture(scope="session")
def worker_url(ort_artifact):
    """A dk serve worker (uvicorn in a thread) serving the ort artifact; its URL."""
    from dk.plugins import get_plugin_manager
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig
    from dk.serve.server import ServerThread

    engine = get_plugin_manager().call_stage("ort", "load", artifact=ort_artifact, device="cpu", options={})
    model = ModelInfo.from_artifact(ort_artifact, "ort")
    app = create_app(engine, ServeConfig(model_name=model.name), model)
    with ServerThread(app) as server:
        yield server.url
