"""Docs stay true: the hook reference is generated from the hookspecs, every hook is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from dk import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def test_hook_reference_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_hook_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_hookspec_documents_its_arguments_and_return():
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("dk_"):
            continue
        doc = inspect.getdoc(func) or ""
        assert ":return:" in doc, name
        for arg in inspect.signature(func).parameters:
            assert f":param {arg}:" in doc, f"{name} does not document {arg}"


def test_readme_commands_name_existing_paths():
    readme = (ROOT / "README.md").read_text()
    for path in ("./core", "./plugins/torch", "./plugins/ort", "./plugins/openvino", "./plugins/datatool",
                 "./plugins/lpdnn", "./plugins/trt", "./plugins/torch2trt", "./plugins/cuda", "./plugins/jetson",
                 "./plugins/rpi", "./examples/dk-plugin-onnxref"):
        assert path in readme and (ROOT / path).is_dir(), path
