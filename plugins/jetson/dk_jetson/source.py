"""Which source samples Jetson statistics: jtop when jetson-stats is installed and its service
answers, tegrastats otherwise, and why. Chosen once per process, on the first sample."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from dk.specs import HwSample

#: The socket the jtop service listens on (jetson-stats mounts it into containers from here).
JTOP_SOCKET = Path("/run/jtop.sock")
JTOP_HINT = "pip install 'dk-plugin-jetson[jtop]' (jetson-stats; its service is set up by 'sudo jtop --install-service')"


@attrs.frozen
class StatsSource:
    """The chosen source: ``jtop``, ``tegrastats`` or ``none``, why, and how to sample it."""

    kind: str
    reason: str
    sample: Callable[[float], list[HwSample]] | None = attrs.field(default=None, eq=False, repr=False)

    def samples(self, timestamp: float | None = None) -> list[HwSample]:
        return [] if self.sample is None else self.sample(time.time() if timestamp is None else timestamp)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _fallback(why_not_jtop: str, tegrastats_problem: str | None) -> StatsSource:
    if tegrastats_problem is not None:
        return StatsSource("none", f"{why_not_jtop}; and {tegrastats_problem}")
    return StatsSource("tegrastats", f"{why_not_jtop}: using tegrastats", tegrastats_sample)


def select_source(tegrastats_problem: str | None, connect: Callable[[], Any] | None = None,
                  close: bool = False) -> StatsSource:
    """Connect to jtop (``connect``: :func:`dk_jetson.jtop_reader.connect_jtop`), or fall back to
    tegrastats with the reason jtop was not used; ``none`` when tegrastats cannot run either.
    ``close``: only find out (``dk doctor --probe``), let the jtop client go again."""
    from dk_jetson.jtop_reader import JtopReader, connect_jtop

    try:
        client = (connect or connect_jtop)()
    except ImportError as exc:
        return _fallback(f"jtop is not installed ({_one_line(exc)}; {JTOP_HINT})", tegrastats_problem)
    except Exception as exc:  # noqa: BLE001 - jtop's JtopException: no service, no permission, version mismatch
        return _fallback(f"jtop is installed but its service did not answer ({_one_line(exc)})", tegrastats_problem)
    reader = JtopReader(client)
    if close:
        reader.close()
        return StatsSource("jtop", "jtop's service answered")
    return StatsSource("jtop", "jtop's service answered", reader.samples)


def preview_source(tegrastats_problem: str | None, socket: Path = JTOP_SOCKET) -> StatsSource:
    """The source :func:`select_source` would pick, from cheap checks only (``dk doctor`` without
    ``--probe``): jetson-stats importable and the jtop service's socket present."""
    if importlib.util.find_spec("jtop") is None:
        return _fallback(f"jtop is not installed ({JTOP_HINT})", tegrastats_problem)
    if not socket.exists():
        return _fallback(f"jtop is installed but its service is not running (no {socket}; sudo systemctl start "
                         "jtop.service)", tegrastats_problem)
    return StatsSource("jtop", f"jtop is installed and its service socket {socket} exists (--probe connects)")


def tegrastats_sample(timestamp: float) -> list[HwSample]:
    """The latest line of the background tegrastats process, as HwSamples."""
    from dk_jetson.reader import reader
    from dk_jetson.tegrastats import parse_line, to_samples

    line = reader().latest
    return to_samples(parse_line(line), timestamp) if line else []


_active: StatsSource | None = None
_lock = threading.Lock()


def active() -> StatsSource:
    """This process's source, chosen on first use; ``none`` off Jetson without trying jtop."""
    global _active
    with _lock:
        if _active is None:
            from dk_jetson import board

            if not board.is_jetson():
                _active = StatsSource("none", board.unavailable_reason() or "not a Jetson")
            else:
                _active = select_source(board.tegrastats_problem())
        return _active
