"""A ``tegrastats --interval N`` process kept running in the background; the latest line wins."""

from __future__ import annotations

import atexit
import subprocess
import threading


class TegrastatsReader:
    """Starts tegrastats once and keeps its latest output line (read by a daemon thread)."""

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats"):
        self.latest: str | None = None
        self._proc = subprocess.Popen([command, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="dk-tegrastats", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip():
                self.latest = line.strip()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()


_reader: TegrastatsReader | None = None
_lock = threading.Lock()


def reader() -> TegrastatsReader:
    global _reader
    with _lock:
        if _reader is None:
            _reader = TegrastatsReader()
        return _reader
