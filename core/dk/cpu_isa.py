"""The CPU's int8-relevant instruction-set flags, read from ``/proc/cpuinfo`` (no heavy import).

int8 kernels on x86 differ by ISA: with VNNI (``avx512_vnni``, ``avx_vnni``) or AMX they add
u8 x s8 products in 32 bits; without it (AVX2, plain AVX-512) ONNX Runtime uses ``vpmaddubsw``,
whose 16-bit pair sums saturate when weights use all 8 bits. ONNX Runtime's documentation
recommends quantizing weights to 7 bits (``reduce_range``) on such CPUs.

``DK_CPU_FLAGS="sse4_1 avx2 fma"`` replaces the flags read from ``/proc/cpuinfo``: under an
emulator (``qemu-x86_64 -cpu EPYC-Rome``) that file still describes the host, while the engines'
CPUID sees the emulated CPU.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

#: Flags that decide which int8 kernels x86 engines pick.
INT8_FLAGS = (
    "sse4_1", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Every flag of the first CPU in ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM);
    empty where that file does not exist. ``DK_CPU_FLAGS`` (space or comma separated) wins."""
    if (override := os.environ.get("DK_CPU_FLAGS")) is not None:
        return frozenset(override.replace(",", " ").split())
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def is_x86(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def int8_flags(flags: frozenset[str] | None = None) -> list[str]:
    """The int8-relevant flags this CPU has, in :data:`INT8_FLAGS` order."""
    flags = cpu_flags() if flags is None else flags
    return [f for f in INT8_FLAGS if f in flags]


def has_vnni(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in VNNI_FLAGS)


def int8_isa(flags: frozenset[str] | None = None, machine: str | None = None) -> str:
    """A short name of the int8 code path: ``amx``, ``avx512-vnni``, ``avx-vnni``, ``avx512``,
    ``avx2``, ``sse`` on x86; the machine name (``aarch64``) elsewhere."""
    if not is_x86(machine):
        return (machine or platform.machine()).lower() or "unknown"
    flags = cpu_flags() if flags is None else flags
    for flag, name in (("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx_vnni", "avx-vnni"),
                       ("avx512bw", "avx512"), ("avx2", "avx2")):
        if flag in flags:
            return name
    return "sse"


def int8_saturates(flags: frozenset[str] | None = None, machine: str | None = None) -> bool:
    """True on x86 without VNNI/AMX, where 8-bit weights can saturate u8 x s8 kernels."""
    return is_x86(machine) and not has_vnni(flags)


def isa_record() -> dict[str, object]:
    """What the environment record of results stores about the CPU's int8 abilities."""
    return {"int8_isa": int8_isa(), "flags": int8_flags(), "vnni": has_vnni()}
