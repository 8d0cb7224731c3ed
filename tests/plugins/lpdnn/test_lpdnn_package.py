"""``dk run export --plugin lpdnn`` without a URL: an LPDNN package (ONNX + YAML), the toolchain
called when present, and clear MissingDependency errors for the absent LPDNN binaries."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from dk import api
from dk.errors import MissingDependency, UsageError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest


@pytest.fixture(autouse=True)
def no_lpdnn_binaries(monkeypatch, tmp_path):
    for var in ("DK_LPDNN_URL", "DK_LPDNN_TOOLCHAIN", "DK_LPDNN_WORKER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no onnx2lpdnn / http-worker here


def _export(tmp_path, **options):
    return api.export("lpdnn", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path / "a", options=options))


def test_package_holds_onnx_and_the_three_yaml_files(tmp_path):
    artifact = _export(tmp_path)
    assert artifact.format == "lpdnn" and artifact.name == "v1.0_digitsnet_default_8x8_fp32_lpdnn"
    assert [f["name"] for f in artifact.manifest["files"]] == ["model.onnx", "algorithm.yml", "challenge.yml",
                                                               "deployment.yml"]
    algorithm = (artifact.path / "algorithm.yml").read_text()
    assert "challenge: \"challenge.yml\"" in algorithm and "  file: \"model.onnx\"" in algorithm
    assert "  precision: \"F32\"" in algorithm and "    shape: [-1, 1, 8, 8]" in algorithm
    assert "classes: [\"0\", \"1\", \"2\"" in (artifact.path / "challenge.yml").read_text()
    deployment = (artifact.path / "deployment.yml").read_text()
    assert deployment.startswith('engine: "onnxruntime"\nprecision: "F32"\ndeployment_package: "x86_64-ubuntu20"')
    assert artifact.manifest["extra"]["toolchain"].startswith("not found")
    with pytest.raises(MissingDependency, match="the LPDNN toolchain \\(onnx2lpdnn\\) was not installed"):
        api.load_engine("lpdnn", artifact)


def test_the_toolchain_is_called_when_present_and_the_worker_binary_is_required(tmp_path, monkeypatch):
    tool = tmp_path / "onnx2lpdnn"
    tool.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys, pathlib
        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        out = pathlib.Path(args["--output-dir"]); out.mkdir()
        (out / "ai_app_config.json").write_text(json.dumps({{"engine": args["--engine"],
            "precision": args["--precision"], "package": args["--deployment-package"]}}))
        """))
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("DK_LPDNN_TOOLCHAIN", str(tool))
    artifact = _export(tmp_path, engine="lne", deployment_package="jetson-nano")
    assert "aiapp/ai_app_config.json" in [f["name"] for f in artifact.manifest["files"]]
    config = json.loads((artifact.path / "aiapp" / "ai_app_config.json").read_text())
    assert config == {"engine": "lne", "precision": "F32", "package": "jetson-nano"}
    with pytest.raises(MissingDependency, match="the LPDNN http-worker binary is not installed"):
        api.load_engine("lpdnn", artifact)


def test_an_existing_ai_app_config_needs_the_worker_binary(tmp_path):
    config = tmp_path / "app" / "ai_app_config.json"
    config.parent.mkdir()
    config.write_text("{}")
    artifact = _export(tmp_path, app_config=str(config))
    assert artifact.format == "lpdnn-aiapp"
    with pytest.raises(MissingDependency, match="DK_LPDNN_WORKER"):
        api.load_engine("lpdnn", artifact)


def test_unknown_options_and_int8_are_refused(tmp_path):
    with pytest.raises(UsageError, match="unknown lpdnn export option\\(s\\) colour"):
        _export(tmp_path, colour="red")
    from dk.errors import DkError

    with pytest.raises(DkError, match="plugin 'lpdnn' has no int8 precision"):  # dk.api.check_precision
        api.export("lpdnn", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, precision="int8"))


def test_importing_the_plugin_is_cheap():
    code = ("import sys, dk_lpdnn.plugin\n"
            "print([m for m in ('torch', 'onnxruntime', 'starlette', 'uvicorn', 'PIL', 'http.client') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_each_stage_accepts_the_other_stages_options(tmp_path):
    # dk run bench hands the same -o options to export and load: a load key must not fail the export
    artifact = _export(tmp_path, binary="0", port="9000")
    assert artifact.format == "lpdnn"
    with pytest.raises(MissingDependency, match="this LPDNN package has no ai_app_config.json"):  # past the options
        api.load_engine("lpdnn", artifact, options={"engine": "lne", "binary": "0"})
    with pytest.raises(UsageError, match=r"unknown lpdnn load option\(s\) colour; valid options are url:"):
        api.load_engine("lpdnn", artifact, options={"colour": "red"})
