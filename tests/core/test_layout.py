"""Core's layout holds: the public modules of docs/api.md import and have their names, importing the
kernel loads no feature package, feature packages import only downward, and nothing (core or a
plugin package) imports itself back in a circle."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "dk"

#: Feature packages of core and their layer: a package may import the kernel and packages of a
#: lower layer, never one of its own layer or above.
LAYERS = {"vision": 1, "testing": 1, "bench": 2, "serve": 2, "debug": 2, "report": 3, "cli": 4}
#: Subpackages of core/dk that belong to the kernel (data, not features).
KERNEL_PACKAGES = {"default_model"}
#: Circles the serve branch removes (issue 17); delete an entry once it no longer exists.
KNOWN_CIRCLES: list[set[str]] = []


def modules(package_dir: Path) -> dict[str, Path]:
    found = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, lazy: bool) -> list[tuple[str, list[str]]]:
    """(module, names) of every absolute import in ``path``; with ``lazy`` also those inside
    functions. Imports under ``if TYPE_CHECKING:`` never run and are left out."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if lazy or not inside:
                if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                    found.append((child.module, [alias.name for alias in child.names]))
                elif isinstance(child, ast.Import):
                    found.extend((alias.name, []) for alias in child.names)
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def graph(known: dict[str, Path], lazy: bool) -> dict[str, set[str]]:
    """Module -> the modules of ``known`` it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        for module, names in imports(path, lazy):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
            targets = subs + ([module] if len(subs) < len(names) or not names else [])
            edges.setdefault(name, set()).update(t for t in targets if t in known and t != name)
    return edges


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                strong(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                other = stack.pop()
                component.add(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in list(edges):
        if node not in index:
            strong(node)
    return found


def package_of(module: str) -> str | None:
    """The feature package of a dk module, or None for the kernel."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] not in KERNEL_PACKAGES and (CORE / parts[1] / "__init__.py").is_file():
        return parts[1]
    return None


def test_every_feature_package_has_a_layer():
    packages = {init.parent.name for init in CORE.glob("*/__init__.py")} - KERNEL_PACKAGES
    assert sorted(packages - set(LAYERS)) == []


def public_names() -> dict[str, list[str]]:
    """Module -> names, read from the tables of docs/api.md."""
    table = {}
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`dk."):
            module = re.match(r"`(dk[\w.]*)`", cells[0])[1]
            table[module] = re.findall(r"`([A-Za-z_]\w*)`", cells[1])
    return table


def test_every_public_module_and_name_of_the_api_doc_exists():
    table = public_names()
    assert {"dk.artifacts", "dk.engine", "dk.sources", "dk.specs", "dk.errors", "dk.onnx_io", "dk.testing"} <= set(table)
    missing = [f"{m}.{n}" for m, names in table.items() for n in names
               if not hasattr(importlib.import_module(m), n)]
    assert missing == []


def test_importing_the_kernel_loads_no_feature_package():
    kernel = sorted(m for m in modules(CORE) if package_of(m) is None)
    code = (f"import importlib, json, sys\nfor m in {kernel!r}: importlib.import_module(m)\n"
            "from dk import hookimpl\nprint(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    loaded = [m for m in json.loads(proc.stdout) if m.startswith("dk.") and package_of(m)]
    assert loaded == []


def test_feature_packages_import_only_the_kernel_and_lower_layers():
    upward = []
    for name, targets in graph(modules(CORE), lazy=True).items():
        source = package_of(name)
        if source is None:
            continue
        for target in targets:
            other = package_of(target)
            if other not in (None, source) and LAYERS.get(other, 0) >= LAYERS.get(source, 0):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_the_kernel_imports_features_only_inside_functions():
    at_import = [f"{name} -> {target}" for name, targets in graph(modules(CORE), lazy=False).items()
                 for target in targets if package_of(name) is None and package_of(target)]
    assert at_import == []


def test_no_import_circles_in_core_or_any_plugin_package():
    packages = [CORE, *sorted(ROOT.glob("plugins/*/dk_*")), *sorted(ROOT.glob("examples/*/dk_*"))]
    found = []
    for package in packages:
        if package.is_dir():
            found += [c for c in circles(graph(modules(package), lazy=True)) if c not in KNOWN_CIRCLES]
    assert found == []


def test_the_circle_finder_finds_a_circle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (package / "b.py").write_text("from pkg import a\n")
    (package / "c.py").write_text("from pkg import a, b\n")
    assert circles(graph(modules(package), lazy=True)) == [{"pkg.a", "pkg.b"}]
    assert circles(graph(modules(package), lazy=False)) == []


def test_every_core_package_opens_with_a_docstring_and_has_a_line_in_the_layout_tree():
    notes = (ROOT / "docs" / "architecture-notes.md").read_text()
    for init in sorted(CORE.glob("*/__init__.py")):
        package = init.parent.name
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"dk.{package} has no docstring"
        assert f"\ncore/dk/{package}/ " in notes, f"core/dk/{package}/ is missing from the layout tree"


def test_every_plugin_package_has_the_same_shape():
    # dk_<name>/plugin.py, registered in the dk entry-point group, holds the hooks; stage modules hold the work
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    for project in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        name = project.parent.name
        entry_points = tomllib.loads(project.read_text())["project"]["entry-points"]["dk"]
        assert entry_points == {name: f"dk_{name}.plugin"}, project
        plugin = importlib.import_module(f"dk_{name}.plugin")
        hooks = [n for n in dir(plugin) if n.startswith("dk_") and hasattr(getattr(plugin, n), "dk_impl")]
        assert "dk_describe" in hooks, f"dk_{name}.plugin"
