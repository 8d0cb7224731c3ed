"""What a benchmark sweep runs: engines x precisions x input sizes x batch sizes (x targets),
checked up front.

:func:`plan_sweep` turns the CLI's lists into a :class:`SweepPlan` and refuses an unknown engine
or precision with one error before anything is built. :meth:`SweepPlan.cells` cuts the plan into
:class:`Cell` s, the units a sweep runner (:mod:`dk.bench.runners`) schedules; :mod:`dk.bench.execution`
measures one cell.
"""

from __future__ import annotations

from typing import Any

import attrs

from dk.bench.latency import TimedRegion
from dk.errors import UsageError
from dk.specs import PRECISIONS


@attrs.frozen
class Entry:
    """One engine at one precision, written ``engine:precision``."""

    engine: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.precision}"


@attrs.frozen
class Cell:
    """One engine at one precision and input size, on one target, measured at ``batches``.

    The in-process runner makes one cell per engine load (all batches); a fleet runner may split
    them to one batch per cell so that more nodes work at once."""

    entry: Entry
    size: tuple[int, int] | None = None  # (H, W); None: the model's own
    batches: tuple[int, ...] = (1,)
    target: str | None = None  # a target tag (see dk.bench.targets); None: any machine

    @property
    def label(self) -> str:
        size = f" {self.size[0]}x{self.size[1]}" if self.size else ""
        target = f" @{self.target}" if self.target else ""
        return f"{self.entry.label}{size} batch {','.join(map(str, self.batches))}{target}"

    @property
    def artifact_group(self) -> tuple:
        """Cells with the same group share one built artifact."""
        return (self.entry, self.size, self.target)


@attrs.define
class SweepPlan:
    """Everything a sweep runs and how it times it."""

    entries: list[Entry]
    batches: list[int] = attrs.field(factory=lambda: [1])
    input_sizes: list[tuple[int, int]] = attrs.field(factory=list)  # (H, W); empty: the model's own
    warmup: int = 20
    iterations: int = 200
    duration: float | None = None
    region: TimedRegion = attrs.field(factory=TimedRegion)
    reference: Entry | None = None
    hw_interval: float = 0.1
    skipped: list[dict[str, str]] = attrs.field(factory=list)
    targets: list[str] = attrs.field(factory=list)  # empty: wherever the runner runs
    profile_layers: bool = False

    @property
    def total_runs(self) -> int:
        return len(self.all_entries) * max(1, len(self.input_sizes)) * len(self.batches) * max(1, len(self.targets))

    def cells(self, split_batches: bool = False) -> list[Cell]:
        """Every cell of the plan, target by target, in the order a local run measures them."""
        cells = []
        for target in self.targets or [None]:
            for entry in self.all_entries:
                for size in self.input_sizes or [None]:
                    if split_batches:
                        cells += [Cell(entry, size, (batch,), target) for batch in self.batches]
                    else:
                        cells.append(Cell(entry, size, tuple(self.batches), target))
        return cells

    @property
    def all_entries(self) -> list[Entry]:
        """The reference first (when it is not one of the entries), then the entries."""
        if self.reference is not None and self.reference not in self.entries:
            return [self.reference, *self.entries]
        return list(self.entries)

    def settings(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "iterations": None if self.duration is not None else self.iterations,
            "duration_s": self.duration,
            "batches": self.batches,
            "input_sizes": [list(s) for s in self.input_sizes],
            "timed_region": {"preprocess": self.region.preprocess, "copies": self.region.copies},
            "reference": self.reference.label if self.reference else None,
            "hw_interval_s": self.hw_interval,
            "skipped": self.skipped,
            "targets": self.targets,
            "profile_layers": self.profile_layers,
        }


def split_list(text: str | None, option: str) -> list[str]:
    """``a,b`` -> ["a", "b"]; an empty entry (``a,,b``, ``a,``) is refused, not dropped."""
    if text is None:
        return []
    items = [part.strip() for part in text.split(",")]
    if not any(items):
        raise UsageError(f"{option}: give a comma-separated list")
    if not all(items):
        raise UsageError(f"{option}: {text!r} has an empty entry; write the list without it "
                         f"({','.join(i for i in items if i)})")
    return items


def parse_batches(text: str | None, default: int) -> list[int]:
    """``1,4,8`` -> [1, 4, 8] (positive, duplicates dropped, order kept)."""
    if not text:
        return [default]
    batches: list[int] = []
    for part in split_list(text, "--batches"):
        if not part.isdigit() or int(part) < 1:
            raise UsageError(f"--batches: {part!r} is not a positive integer (e.g. --batches 1,4,8,16)")
        if int(part) not in batches:
            batches.append(int(part))
    return batches


def parse_sizes(text: str | None) -> list[tuple[int, int]]:
    """``224,160x120`` -> [(224, 224), (160, 120)] (H x W)."""
    sizes = []
    for part in split_list(text, "--input-sizes") if text else []:
        dims = part.lower().split("x")
        if len(dims) not in (1, 2) or not all(d.isdigit() and int(d) > 0 for d in dims):
            raise UsageError(f"--input-sizes: {part!r} is not SIZE or HxW with positive integers (e.g. 224,160x120)")
        sizes.append((int(dims[0]), int(dims[-1])))
    return sizes


def parse_entry(text: str, option: str = "--reference") -> Entry:
    name, _, precision = text.strip().partition(":")
    precision = precision or "fp32"
    if not name:
        raise UsageError(f"{option}: {text!r} names no engine (e.g. torch:fp32)")
    if precision not in PRECISIONS:
        raise UsageError(f"{option}: unknown precision {precision!r} in {text!r}; use one of {', '.join(PRECISIONS)}")
    return Entry(name, precision)


def plan_sweep(plugins: list[str], precisions: list[str], manager: Any, **settings: Any) -> SweepPlan:
    """A checked plan: every engine installed and loadable, every precision known, and an explicit
    ``engine:precision`` supported by that engine. Pairs from the cross product that an engine does
    not support are skipped and listed in the plan."""
    if not plugins:
        raise UsageError("name the engine(s) with --plugin NAME or --plugins A,B")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise UsageError(f"--precisions: unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    requested: list[tuple[Entry, bool]] = []  # (entry, named explicitly as engine:precision), in order
    for text in plugins:
        if ":" in text:
            requested.append((parse_entry(text, "--plugins"), True))
        else:
            requested += [(Entry(text, p), False) for p in (precisions or ["fp32"])]
    reference = settings.pop("reference", None)
    checks = [*requested, *([(reference, True)] if reference else [])]
    for entry, _ in checks:
        manager.get(entry.engine)  # unknown or broken plugin: one clear error now
    supported = {name: _precisions(manager, name) for name in {e.engine for e, _ in checks}}
    for entry, explicit in checks:
        allowed = supported[entry.engine]
        if explicit and allowed and entry.precision not in allowed:
            raise UsageError(f"engine {entry.engine!r} does not run {entry.precision} (it runs {', '.join(allowed)})")
    entries, skipped = [], []
    for entry, _ in requested:
        allowed = supported[entry.engine]
        if allowed and entry.precision not in allowed:
            skipped.append({"entry": entry.label, "reason": f"{entry.engine} runs {', '.join(allowed)}"})
        elif entry not in entries:
            entries.append(entry)
    if not entries:
        raise UsageError("nothing to run: " + "; ".join(f"{s['entry']} ({s['reason']})" for s in skipped))
    return SweepPlan(entries=entries, reference=reference, skipped=skipped, **settings)


def _precisions(manager: Any, name: str) -> list[str]:
    """The precisions an engine says it runs (empty: it does not say, so anything is tried)."""
    if not manager.implements(name, "dk_describe"):
        return []
    info = manager.call_stage(name, "describe", probe=False)
    return list(getattr(info, "precisions", []) or [])
