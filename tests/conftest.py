"""Shared fixtures: a fresh plugin manager per test and helpers to fake installed plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dk.plugins import reset_plugin_manager
from tests.processes import spawner


@pytest.fixture(autouse=True)
def fresh_plugin_manager(monkeypatch):
    """Every test starts with a new process-wide manager and no plugin environment variables."""
    monkeypatch.delenv("DK_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("DK_STRICT_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def spawn(tmp_path):
    """Start processes (``spawn.dk("serve", ...)``) whose pipes are drained and which are killed when the
    test ends, passed or failed (tests/processes.py)."""
    yield from spawner(tmp_path)


def make_distribution(site: Path, dist: str, plugins: dict[str, str]) -> Path:
    """Fake an installed distribution in ``site`` whose ``dk`` entry points are the given
    modules (name -> module source). Put ``site`` on PYTHONPATH/sys.path to 'install' it."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[dk]"]
    for name, source in plugins.items():
        module = f"{dist.replace('-', '_')}_{name}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        lines.append(f"{name} = {module}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def run_dk(*args: str, env_extra: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 300):
    """Run the dk CLI in a subprocess, as a user would."""
    env = dict(os.environ)
    env.pop("DK_LOAD_PLUGINS", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", "import sys; from dk.cli import main; sys.exit(main())", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
    )
