"""Sweep runners: who measures the cells of a benchmark sweep, and where.

Core ships the in-process runner (every cell here, one after another). Plugins add others through
the ``dk_sweep_runner`` hook; the ray plugin sends cells to a Ray cluster. Every runner fills the
same result document, so reports, CSV and ``--baseline`` gates work whatever ran the sweep.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from dk.errors import UsageError

Progress = Callable[[str], None]


class SweepRunner(Protocol):
    """What ``dk_sweep_runner`` returns.

    :ivar name: The runner's name (``local``, ``ray``), recorded in the results.
    :ivar local: True when cells run in this process, which then samples hardware statistics
        itself; a remote runner samples on the nodes and puts the samples in each run.
    """

    name: str
    local: bool

    def run(self, plan: Any, opts: Any, document: dict, sampler: Any, progress: Progress) -> None:
        """Measure every cell of ``plan`` (a :class:`dk.bench.sweep.SweepPlan`; build options ``opts``),
        appending run records to ``document["runs"]`` as they arrive and speed-ups at the end
        (:func:`dk.bench.execution.add_speedups`). On ``KeyboardInterrupt``: stop outstanding cells, keep
        what arrived, and re-raise."""

    def describe(self) -> dict[str, Any]:
        """What the results should record about the runner (cluster address, nodes...)."""


class LocalRunner:
    """Every cell in this process, in plan order (the default)."""

    name = "local"
    local = True

    def run(self, plan: Any, opts: Any, document: dict, sampler: Any, progress: Progress) -> None:
        from dk.bench.execution import run_plan

        if plan.targets:
            raise UsageError("--targets pins cells to fleet targets: run the sweep on a cluster (--ray ADDRESS), "
                             "or drop --targets to run here")
        run_plan(plan, opts, document, sampler, progress)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def get_runner(name: str | None, address: str | None, manager: Any,
               options: dict[str, Any] | None = None) -> SweepRunner:
    """The runner called ``name`` (``local`` when None), from core or from a plugin."""
    if name in (None, "local"):
        if address:
            raise UsageError("--runner local takes no address; name a fleet runner (e.g. --ray auto)")
        return LocalRunner()
    runner = manager.hook.dk_sweep_runner(name=name, address=address, options=options or {})
    if runner is None:
        hint = " (pip install ./plugins/ray)" if name == "ray" else ""
        raise UsageError(f"no installed plugin provides the sweep runner {name!r}{hint}; see 'dk doctor'")
    return runner
