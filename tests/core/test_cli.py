"""The dk CLI as a user runs it: fast help, doctor, one-line errors, broken plugins tolerated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import make_distribution, run_dk


def test_help_loads_no_plugin_and_no_heavy_library():
    code = (
        "import sys; from dk.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pluggy', 'numpy', 'onnx', 'torch', 'onnxruntime', 'rich', 'dk_ort', 'dk_torch')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert "dk doctor" in proc.stdout


def test_doctor_json_lists_installed_plugins():
    proc = run_dk("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    names = {p["name"]: p for p in report["plugins"]}
    assert names["core"]["status"] == "ok"
    assert report["probe"] is False


def test_doctor_shows_a_broken_plugin_and_other_commands_still_work(tmp_path):
    site = make_distribution(tmp_path / "site", "dk-plugin-broken", {"broken": "raise ImportError('no libfoo.so')\n"})
    env = {"PYTHONPATH": str(site)}
    proc = run_dk("doctor", "--json", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    broken = next(p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "broken")
    assert broken["status"] == "import-error" and "no libfoo.so" in broken["error"]
    assert broken["distribution"] == "dk-plugin-broken"
    proc = run_dk("run", "export", "--plugin", "broken", env_extra=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: plugin 'broken' is installed but failed to load (import-error): ImportError: no libfoo.so; "
        "run 'dk doctor' for details"
    ]


def test_doctor_prints_each_reason_whole_with_its_url_and_command(tmp_path):
    url = "https://example.com/a/rather/long/path/to/the/install/instructions/of/libfoo/for/this/platform.html"
    reason = f"no libfoo.so: see {url} or run 'pip install dk-plugin-broken[libfoo]' [extra]"
    site = make_distribution(tmp_path / "site", "dk-plugin-broken", {"broken": f"raise ImportError({reason!r})\n"})
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    proc = run_dk("doctor", env_extra={"PYTHONPATH": path})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"broken (import-error): ImportError: {reason}" in lines  # one line, markup-like [extra] kept
    assert "…" not in proc.stdout  # no cell is cut
    torch2trt = next((line for line in lines if line.startswith("torch2trt (missing-dependency): ")), None)
    if torch2trt is not None:  # torch2trt not installed here: its install URL and command, whole
        assert "git clone https://github.com/NVIDIA-AI-IOT/torch2trt && pip install ./torch2trt" in torch2trt


def test_strict_plugins_reraises_for_plugin_authors(tmp_path):
    site = make_distribution(tmp_path / "site", "dk-plugin-broken", {"broken": "raise ImportError('no libfoo.so')\n"})
    proc = run_dk("doctor", env_extra={"PYTHONPATH": str(site), "DK_STRICT_PLUGINS": "1"})
    assert proc.returncode != 0 and "no libfoo.so" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "export", "--plugin", "nope"], "error: no plugin named 'nope'"),
    (["run", "export", "--plugin", "core"], "error: plugin 'core' does not implement stage 'export'"),
    (["run", "export", "--plugin", "core", "--model", "missing.onnx"], "error: model path missing.onnx does not exist"),
    (["run", "export", "--plugin", "core", "--shapes", "input:1xAx8"], "error: --shapes: 'A' in 'input:1xAx8' is not a positive integer"),
    (["run", "export", "--plugin", "core", "--min-shapes", "input:4x1x8x8", "--max-shapes", "input:2x1x8x8"],
     "exceeds --max-shapes"),
    (["compare", "--plugins", "torch"], "give at least two engines"),
    (["compare", "--plugins", "torch,ort:int4"], "precision must be one of"),
])
def test_bad_invocations_give_one_error_line_and_nonzero_exit(args, message):
    proc = run_dk(*args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_onnx_and_truncated_model_files_are_one_line_errors(tmp_path):
    from dk.default_model import ONNX_PATH

    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(ONNX_PATH.read_bytes()[:5000])
    for path in (text, cut):
        proc = run_dk("run", "export", "--plugin", "ort", "--model", str(path), "--out", str(tmp_path / "out"),
                      env_extra={"DK_LOAD_PLUGINS": "ort"})
        assert proc.returncode == 2, proc.stderr
        assert "is not a valid ONNX" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "ort").exists() or not any((tmp_path / "out" / "ort").iterdir())


def test_debug_flag_shows_the_traceback():
    proc = run_dk("--debug", "run", "export", "--plugin", "nope")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "PluginNotFound" in proc.stderr
