"""``dk serve`` stops on SIGINT and SIGTERM whatever moment they come: while Python starts, while the
engine loads, while uvicorn starts, and while it serves. Every process, signalled at a random
(seeded) moment between its spawn and a second after it announced its URL, exits 0 within its
grace period. The default run signals 17 processes, 6 at a time; ``-m soak`` signals 61.

A signal during start-up lets the current step (an import, loading the engine) finish, and on
this 2-core machine shared with other test runs start-up alone took up to 25 s: the processes
get ``--stop-grace 90`` so that the test checks behaviour, not speed (the watchdog that enforces
the grace period has its own test below)."""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")

from dk.serve.server import STOP_GRACE_S, StopSignals  # noqa: E402
from tests.conftest import run_dk  # noqa: E402
from tests.processes import Spawner  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
URL = r"on (http://127\.0\.0\.1:\d+)"
GRACE_S = 90


@attrs.define
class Outcome:
    signal: str
    phase: str  # python-start (dk's handler not yet installed), starting, serving
    code: int
    stop_s: float
    output: str
    ready_s: float | None = None  # spawn to URL line, when the test waited for it


def caught_signals(pid: int) -> int:
    """The process's mask of signals with a handler (``SigCgt`` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def owns_sigterm(pid: int) -> bool:
    """Python handles SIGINT from its first moments, SIGTERM only once dk serve's handler (installed
    together with its SIGINT handler) is in place."""
    try:
        return bool(caught_signals(pid) & (1 << (signal.SIGTERM - 1)))
    except OSError:  # it has already exited
        return False


def signal_one(spawn: Spawner, artifact: str, sig: signal.Signals, after: str, delay: float) -> Outcome:
    """Start ``dk serve``, signal it ``delay`` s after ``after`` (spawn, dk owning the signals, or its
    URL line), wait for its exit."""
    server = spawn.dk("serve", "--plugin", "ort", "--artifact", artifact, "--port", "0", "--log-level", "warning",
                      "--stop-grace", str(GRACE_S))
    ready_s = None
    try:
        if after == "owned":  # dk serve's handler is in place: the signal comes during start-up
            while not owns_sigterm(server.pid):
                assert server.proc.poll() is None, server.output()
                threading.Event().wait(0.005)
        if after == "ready":
            url = server.wait_for_line(URL).group(1)
            ready_s = time.monotonic() - server.started_at
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=10) as answer:  # announced = accepting
                assert answer.status == 200 and json.loads(answer.read()) == {"ready": True}
        threading.Event().wait(delay)  # the random moment this process is signalled at (not a speed guess)
        serving = any("serving model" in line for line in server.lines["stderr"])
        phase = "serving" if serving else "starting" if owns_sigterm(server.pid) else "python-start"
        sent = time.monotonic()
        server.send_signal(sig)
        code = server.wait(GRACE_S)
        return Outcome(sig.name, phase, code, time.monotonic() - sent, server.output(), ready_s)
    finally:
        server.kill()


def signal_many(spawn: Spawner, artifact: str, count: int, parallel: int, seed: int) -> list[Outcome]:
    rng = random.Random(seed)
    calibration = signal_one(spawn, artifact, signal.SIGTERM, "ready", rng.uniform(0, 1))
    ready_s = calibration.ready_s * 1.5  # start-up takes longer with others starting beside it
    plans = []
    for index in range(count):
        sig = (signal.SIGINT, signal.SIGTERM)[index % 2]
        after = ("spawn", "owned", "ready")[index % 3]  # anywhere; surely in start-up; surely serving
        delay = {"spawn": rng.uniform(0, ready_s), "owned": rng.uniform(0, 0.3), "ready": rng.uniform(0, 1)}[after]
        plans.append((sig, after, delay))
    with ThreadPoolExecutor(parallel) as pool:
        outcomes = list(pool.map(lambda plan: signal_one(spawn, artifact, *plan), plans))
    return [calibration, *outcomes]


def check(outcomes: list[Outcome]) -> None:
    phases = {phase: sum(o.phase == phase for o in outcomes) for phase in ("python-start", "starting", "serving")}
    print(f"signalled {len(outcomes)} dk serve processes: {phases}; slowest stop "
          f"{max(o.stop_s for o in outcomes):.1f} s (grace {GRACE_S} s)")
    for outcome in outcomes:
        assert outcome.stop_s < GRACE_S, outcome.output
        if outcome.phase == "python-start":  # before dk runs: the default action ends it at once
            assert outcome.code in (130, 1, -signal.SIGINT, -signal.SIGTERM), outcome.output
        else:
            assert outcome.code == 0, f"{outcome.signal} while {outcome.phase}: {outcome.output}"
            assert f"dk serve stopped ({outcome.signal})" in outcome.output, outcome.output
    assert phases["starting"] >= 1 and phases["serving"] >= 1, phases  # the moments covered both


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("serve-signals")
    export = run_dk("run", "export", "--plugin", "ort", "--out", str(out), "--json")
    assert export.returncode == 0, export.stderr
    return json.loads(export.stdout)["artifact"]["path"]


def test_sigint_and_sigterm_at_random_moments_stop_dk_serve_with_status_0(spawn, artifact):
    check(signal_many(spawn, artifact, count=16, parallel=6, seed=20))


@pytest.mark.soak
def test_sigint_and_sigterm_at_random_moments_stop_dk_serve_with_status_0_soak(spawn, artifact):
    check(signal_many(spawn, artifact, count=60, parallel=4, seed=2026))


def test_uvicorn_never_replaces_the_handler_and_a_signal_while_serving_drains_and_stops():
    """In this process: while ``server.run`` serves, SIGINT/SIGTERM still reach StopSignals (uvicorn's
    ``capture_signals`` is switched off), a signal makes ``run`` return, and the previous handlers
    come back afterwards."""
    import os

    from dk.serve.server import listening_socket, make_server
    from tests.core.test_serve_support import LinearEngine, make_app

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    engine = LinearEngine()
    seen = {}

    def started() -> None:
        seen.update({sig: signal.getsignal(sig) for sig in before})
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (main) thread at once

    sock = listening_socket("127.0.0.1", 0)
    with StopSignals(grace_s=60) as signals:
        server = make_server(make_app(engine), "127.0.0.1", sock.getsockname()[1], on_started=started)
        signals.attach(server)
        server.run(sockets=[sock])
        assert seen == {sig: signals._handle for sig in before}
    sock.close()
    assert signals.received == [signal.SIGTERM] and server.should_exit and not server.force_exit
    assert engine.closed  # the app's lifespan closed the engine on the way out
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_the_watchdog_ends_a_process_that_outlives_its_grace_period(spawn):
    """Something that never returns after the signal (here a sleep): status 1 and one line, at the
    grace period, not never."""
    code = ("import os, signal, time\n"
            "from dk.serve.server import StopSignals\n"
            "with StopSignals(grace_s=1):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    print('signalled', flush=True)\n"
            "    time.sleep(600)\n")
    stuck = spawn([sys.executable, "-c", code])
    stuck.wait_for_line("signalled", stream="stdout")
    assert stuck.wait(60) == 1, stuck.output()
    assert stuck.stderr == "error: dk serve did not stop within 1 s of SIGTERM; exiting with status 1\n"


def test_the_default_grace_period_is_under_kubernetes_default_termination_grace_period():
    from dk.serve.server import GRACEFUL_SHUTDOWN_S

    from dk.cli.serve import serve

    assert GRACEFUL_SHUTDOWN_S < STOP_GRACE_S < 30 and StopSignals().grace_s == STOP_GRACE_S
    assert next(p.default for p in serve.params if p.name == "stop_grace") == STOP_GRACE_S
