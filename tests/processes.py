"""Processes a test starts: pipes drained by threads (into memory and a log file), lines waited on
as events, and the process always killed at the end of the test (the ``spawn`` fixture).

    def test_x(spawn):
        server = spawn.dk("serve", "--plugin", "ort", "--port", "0")
        url = server.wait_for_line(r"on (http://\\S+)").group(1)
        ...
        server.send_signal(signal.SIGINT)
        assert server.wait(STOP_GRACE_S) == 0, server.output()
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

#: ``dk`` as the console script runs it. SIGINT gets Python's own handler first: a test run started
#: as a background job of a non-interactive shell (``cmd &``, as some CI runners do) inherits SIGINT
#: ignored, and Python then never turns SIGINT into KeyboardInterrupt, so a Ctrl-C test could not
#: interrupt its child. A user's terminal Ctrl-C never meets an ignored SIGINT.
INTERRUPTIBLE = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
DK = [sys.executable, "-c", INTERRUPTIBLE + "import sys; from dk.cli import main; sys.exit(main())"]


class Spawned:
    """One child process whose stdout and stderr are read line by line by two threads, so it never
    blocks on a full pipe; :meth:`wait_for_line` waits on those lines, not on a clock."""

    def __init__(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 log: Path | None = None):
        self.argv = argv
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1)
        self.pid = self.proc.pid
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._log = open(log, "a", encoding="utf-8") if log is not None else None
        self._readers = [threading.Thread(target=self._drain, args=(name, pipe), daemon=True, name=f"drain-{name}")
                         for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for reader in self._readers:
            reader.start()

    def _drain(self, name: str, pipe) -> None:
        for line in pipe:
            with self._changed:
                self.lines[name].append(line)
                if self._log is not None:
                    self._log.write(f"[{name}] {line}")
                    self._log.flush()
                self._changed.notify_all()
        pipe.close()
        with self._changed:
            self.lines[name].append("")  # end of stream
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        return "".join(self.lines["stdout"])

    @property
    def stderr(self) -> str:
        return "".join(self.lines["stderr"])

    def output(self) -> str:
        """Everything the process wrote so far, for assertion messages."""
        return f"$ {' '.join(self.argv[3:] if self.argv[:3] == DK else self.argv)}\n--- stdout\n{self.stdout}" \
               f"--- stderr\n{self.stderr}--- exit status {self.proc.poll()}"

    def wait_for_line(self, pattern: str, stream: str = "stderr", timeout: float = 120) -> re.Match:
        """The first match of ``pattern`` in a line of ``stream``; AssertionError when the stream
        ends (the process exited) or ``timeout`` passes first (a guard against hanging, not a
        speed expectation)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                lines = self.lines[stream]
                for line in lines[seen:]:
                    if line == "":
                        raise AssertionError(f"the process ended before printing /{pattern}/\n{self.output()}")
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line /{pattern}/ within {timeout} s\n{self.output()}")
                self._changed.wait(left)

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit status, once both pipes are drained; AssertionError if it is still running after ``timeout``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {timeout} s later\n{self.output()}") from None
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        """Kill the process if it still runs, reap it, and finish reading its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(10)
        if self._log is not None:
            self._log.close()
            self._log = None


class Spawner:
    """What the ``spawn`` fixture returns: starts processes and kills them all when the test ends."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[Spawned] = []

    def __call__(self, argv: list[str], *, cwd: Path | None = None, env_extra: dict[str, str] | None = None,
                 env: dict[str, str] | None = None) -> Spawned:
        if env is None:
            env = {k: v for k, v in os.environ.items() if k != "DK_LOAD_PLUGINS"}
        env = {**env, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        log = self.tmp_path / f"process-{len(self.started)}.log"
        process = Spawned(argv, cwd=cwd or self.tmp_path, env=env, log=log)
        self.started.append(process)
        return process

    def dk(self, *args: str, **kw) -> Spawned:
        """``dk ARGS`` run as a user runs it (the ``dk`` console script's code)."""
        return self(DK + list(args), **kw)

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


def spawner(tmp_path: Path) -> Iterator[Spawner]:
    """Body of the ``spawn`` fixture (tests/conftest.py)."""
    processes = Spawner(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()
