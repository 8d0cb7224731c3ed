"""The machine facts every benchmark records beside its numbers."""

from __future__ import annotations

import datetime as dt
import os
import platform
from typing import Any

from dk.bench.environment import cpu_isa, cpu_model
from dk.cpu_isa import isa_record


def machine(**library_versions: str) -> dict[str, Any]:
    """CPU model and int8-relevant ISA flags, core count, load average, Python and the given library
    versions, and the date."""
    return {"cpu": cpu_model(), "cpu_isa": isa_record(), "cores": os.cpu_count(), **library_versions, "python": platform.python_version(),
            "load_average": os.getloadavg(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def cpu_words() -> str:
    """``AMD EPYC (avx2, avx512f, avx512_vnni), 2 cores``: the CPU a README line was measured on."""
    isa = ", ".join(cpu_isa()) or "no AVX2/AVX-512/NEON"
    return f"{cpu_model()} ({isa}), {os.cpu_count()} cores"


def named(line: str) -> str:
    """``line`` led by the CPU it was measured on (every speed figure names its CPU), unless it
    already starts with ``on ...``."""
    return line if line.startswith("on ") else f"on {cpu_words()}: {line}"
