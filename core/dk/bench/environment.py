"""The environment record stored with every benchmark result: what ran where, with which versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Libraries whose versions matter to a benchmark; read from package metadata, never imported.
LIBRARIES = (
    "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "openvino", "tensorrt", "nncf", "psutil",
    "nvidia-ml-py", "jetson-stats", "pluggy",
)


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    for key in ("model name", "Model", "Hardware", "cpu model"):  # x86, Raspberry Pi/ARM boards, others
        if fields.get(key):
            return fields[key]
    return platform.processor() or platform.machine()


#: The instruction-set extensions that change how fast int8/fp32 kernels run, as /proc/cpuinfo names them.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "neon", "asimd", "asimddp")


def cpu_isa(flags_text: str | None = None) -> list[str]:
    """The speed-relevant ISA extensions of this CPU (``["avx2", "avx512f", "avx512_vnni"]``), in
    :data:`ISA_FLAGS` order; ``flags_text`` is a ``/proc/cpuinfo`` text (default: this machine's)."""
    if flags_text is None:
        from dk.cpu_isa import cpu_flags

        return [flag for flag in ISA_FLAGS if flag in cpu_flags()]
    present: set[str] = set()
    for line in flags_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):  # x86, ARM
            present.update(value.split())
            break
    return [flag for flag in ISA_FLAGS if flag in present]


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git work tree at ``cwd``, or None outside one."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def plugin_versions(manager: Any) -> dict[str, str]:
    return {r.name: r.version for r in manager.records.values() if r.loaded}


def platform_facts(manager: Any) -> dict[str, Any]:
    """``details`` of every available platform plugin's ``dk_describe`` (GPU names, driver, board)."""
    facts: dict[str, Any] = {}
    for record in manager.records.values():
        if not record.loaded or record.name == "core" or not manager.implements(record.name, "dk_describe"):
            continue
        try:
            info = manager.call_stage(record.name, "describe", probe=False)
        except Exception:  # doctor shows why; the environment record just leaves it out
            continue
        if info is not None and info.kind == "platform" and info.available:
            facts[record.name] = dict(info.details)
    return facts


def collect(manager: Any = None, cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    """The whole record: OS, CPU (with its int8-relevant ISA flags), memory, Python, libraries, dk and plugins, git, platform facts."""
    import psutil

    from dk import __version__
    from dk.cpu_isa import isa_record

    if manager is None:
        from dk.plugins import get_plugin_manager

        manager = get_plugin_manager()
    return {
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_isa": isa_record(),
        "cpu_cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 2),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "dk": __version__,
        "plugins": plugin_versions(manager),
        "platform": platform_facts(manager),
        "git": git_commit(cwd),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
