"""Fresh-interpreter probes of the conformance kit: what importing a plugin module loads, and
what a dk command prints (a plugin registered in-process only, not through an entry point, is
registered in the child from its record's ``module[:attribute]``)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Sequence

_IMPORT_PROBE = (
    "import importlib, json, os, sys\n"
    "name, module, heavy = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "import dk.hooks, dk.specs\n"
    "before = set(sys.modules)  # what dk itself loads is not the plugin's cost\n"
    "importlib.import_module(module)\n"
    "imported = sorted(m for m in heavy if m in sys.modules and m not in before)\n"
    "os.environ['DK_LOAD_PLUGINS'] = name\n"
    "from dk import api, plugins\n"
    "described = None\n"
    "if name in plugins.get_plugin_manager().records:  # not when registered in-process only\n"
    "    api.describe(name, probe=False)\n"
    "    described = sorted(m for m in heavy if m in sys.modules)\n"
    "print(json.dumps({'import': imported, 'describe': described}))\n"
)


#: Runs a dk command in a fresh interpreter; a plugin registered in-process only (not through an
#: entry point) is registered from its record's ``module[:attribute]``.
_CLI_PROBE = (
    "import importlib, sys\n"
    "name, module, args = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "from dk.plugins import get_plugin_manager\n"
    "manager = get_plugin_manager()\n"
    "if name not in manager.records:\n"
    "    path, _, attr = module.partition(':')\n"
    "    plugin = importlib.import_module(path)\n"
    "    manager.register(getattr(plugin, attr) if attr else plugin, name)\n"
    "from dk.cli import main\n"
    "sys.exit(main(args))\n"
)



def heavy_imports(name: str, module: str, heavy: Sequence[str]) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """Import ``module`` (and describe plugin ``name``) in a fresh interpreter; which of ``heavy``
    it loaded: ``{"import": [...], "describe": [...] or None}`` (empty when the child failed)."""
    proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, name, module, *heavy],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stdout.strip().splitlines()
    return proc, (json.loads(lines[-1]) if proc.returncode == 0 and lines else {})


def run_cli(name: str, module: str, args: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """``dk ARGS`` in a fresh interpreter with plugin ``name`` available."""
    return subprocess.run([sys.executable, "-c", _CLI_PROBE, name, module, *args],
                          capture_output=True, text=True, timeout=timeout)
