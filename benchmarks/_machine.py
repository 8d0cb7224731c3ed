"""The machine facts every benchmark records beside its numbers."""

from __future__ import annotations

import datetime as dt
import os
import platform
from typing import Any

from dk.cpu_isa import isa_record
from dk.environment import cpu_model


def machine(**library_versions: str) -> dict[str, Any]:
    """CPU model and int8-relevant ISA flags, core count, load average, Python and the given library
    versions, and the date."""
    return {"cpu": cpu_model(), "cpu_isa": isa_record(), "cores": os.cpu_count(), **library_versions, "python": platform.python_version(),
            "load_average": os.getloadavg(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
