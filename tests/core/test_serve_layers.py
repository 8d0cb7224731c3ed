"""dk.serve's modules import only downward: no module reaches one that (directly or not) imports it,
counting imports inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import ast
from pathlib import Path

import dk.serve

PACKAGE = Path(dk.serve.__file__).parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("dk.serve.") and (PACKAGE / f"{n[9:]}.py").is_file()}
    return found


def test_serve_modules_form_no_import_circle():
    graph = {f"dk.serve.{p.stem}": _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and (seen.add(nxt) or reaches(nxt, target, seen))):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert not circles, f"modules on an import circle: {circles}"
    assert "dk.serve.handlers" in graph["dk.serve.app"] and "dk.serve.runner" not in graph["dk.serve.batching"]
