"""Fleet target tags: what kind of machine this is, for sweeps that pin cells to targets.

A target tag names a kind of machine a benchmark result is only valid on: ``cpu-x86_64`` (every
machine, from the CPU architecture), ``cuda-sm90`` (the cuda plugin), ``jetson-orin`` (jetson),
``rpi4`` (rpi). Platform plugins report theirs in :attr:`dk.specs.PluginInfo.targets`. A fleet
runner (the ray plugin) advertises each tag as the custom resource ``dk-target:TAG`` and runs a
cell that names a target only on a node that has it.
"""

from __future__ import annotations

import json
import platform
import re
from typing import Any

from dk.errors import UsageError

RESOURCE_PREFIX = "dk-target:"
_TAG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def cpu_target(machine: str | None = None) -> str:
    """``cpu-x86_64``, ``cpu-aarch64``...: the tag every machine has."""
    arch = (machine or platform.machine() or "unknown").lower()
    return "cpu-" + {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def local_targets(manager: Any, probe: bool = False) -> list[str]:
    """This machine's tags: the CPU tag, then those of every available platform plugin."""
    from dk import api

    tags = [cpu_target()]
    for record in manager.load_all():
        if record.status != "ok":
            continue
        try:
            info = api.describe(record.name, probe=probe)
        except Exception:  # doctor reports a describe that raises; here it just adds no tag
            continue
        if info is not None and info.available:
            tags += [t for t in info.targets if t not in tags]
    return tags


def resource_name(tag: str) -> str:
    return RESOURCE_PREFIX + tag


def ray_resources(tags: list[str], slots: int = 1) -> dict[str, int]:
    """``{"dk-target:cpu-x86_64": 1, ...}``: ``slots`` is how many cells may run at once on the node
    for each tag (1 by default, so that benchmarks on one machine do not disturb each other)."""
    return {resource_name(tag): slots for tag in tags}


def ray_start_argument(tags: list[str], slots: int = 1) -> str:
    """The ``--resources`` argument of ``ray start`` that makes a node advertise ``tags``."""
    return "--resources='" + json.dumps(ray_resources(tags, slots), separators=(",", ":")) + "'"


def parse_targets(text: str | None) -> list[str]:
    """``--targets cuda-sm90,rpi4`` -> ["cuda-sm90", "rpi4"], each a valid tag."""
    if not text:
        return []
    tags = []
    for part in text.split(","):
        tag = part.strip().removeprefix(RESOURCE_PREFIX)
        if not _TAG.match(tag):
            raise UsageError(f"--targets: {part.strip()!r} is not a target tag (lower-case letters, digits, '.', '_', "
                             "'-'; e.g. cuda-sm90,rpi4; 'dk doctor --ray-resources' shows a machine's tags)")
        if tag not in tags:
            tags.append(tag)
    return tags
