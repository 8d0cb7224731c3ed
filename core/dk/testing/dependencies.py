"""The import names of a distribution's declared dependencies (read from package metadata, never
imported): what the conformance kit checks a plugin module does not import at module level."""

from __future__ import annotations

import re
from importlib import metadata

#: Distributions whose import is part of dk's own start-up, never a plugin's cost.
CORE_DISTRIBUTIONS = {"dk-core", "pluggy", "attrs", "click", "rich"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(distribution: str, extras: bool = True) -> list[str]:
    """Names of the requirements ``distribution`` declares, those of its extras too unless
    ``extras`` is false (``nvidia-ml-py``...)."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for line in requires:
        if not extras and "extra ==" in line.replace("extra==", "extra =="):
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and _normalise(match.group(1)) not in names:
            names.append(_normalise(match.group(1)))
    return names


def declared_import_names(distribution: str) -> tuple[str, ...]:
    """Top-level modules of the distributions ``distribution`` depends on (``onnxruntime-gpu`` ->
    ``onnxruntime``; a dependency that is not installed -> its name with ``_``), minus dk-core's
    own dependencies (numpy, onnx...), which every dk process loads anyway."""
    base = CORE_DISTRIBUTIONS | set(requirement_names("dk-core", extras=False))  # numpy, onnx...: dk's own
    wanted = [n for n in requirement_names(distribution) if n not in base]
    by_distribution: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        if module.startswith("_") or module.endswith("-stubs"):
            continue
        for dist in dists:
            by_distribution.setdefault(_normalise(dist), set()).add(module)
    modules: set[str] = set()
    for name in wanted:
        modules |= by_distribution.get(name, {name.replace("-", "_")})
    return tuple(sorted(modules))
