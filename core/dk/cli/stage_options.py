"""Which ``dk run`` options each stage reads: an option given to a stage that would ignore it, or two
options that say the same thing differently, is refused instead of being resolved silently."""

from __future__ import annotations

from typing import Any

from dk.errors import UsageError

#: option keyword -> the stages that read it (options with defaults cannot be told apart from
#: not given, so only options without one are listed)
STAGES_OF = {
    "precision": ("export", "quantize", "infer", "bench"),
    "plugins": ("bench",), "precisions": ("bench",), "batches": ("bench",), "input_sizes": ("bench",),
    "duration": ("bench",), "csv": ("bench",), "baseline": ("bench",), "profile_layers": ("bench",),
    "runner": ("bench",), "ray_address": ("bench",), "targets": ("bench",), "shared_dir": ("bench",),
    "reference": ("all", "bench"),
    "output": ("infer", "bench"),
    "input_path": ("infer",), "camera": ("infer",), "frames": ("infer",),
    "max_accuracy_drop": ("quantize",),
}

#: keyword -> how the option is spelt (where it is not ``--`` + the keyword with dashes)
SPELLING = {"ray_address": "--ray", "input_path": "--input"}

#: stage -> why it has no use for --precision
_NO_PRECISION = {"all": "dk run all builds and compares fp32 and int8 itself"}


def check_stage_options(stage: str, precision: str | None, kw: dict[str, Any]) -> None:
    """One :class:`UsageError` for the first option ``stage`` does not read, or for a pair that conflicts."""
    given = {**kw, "precision": precision}
    for key, stages in STAGES_OF.items():
        if given.get(key) in (None, False) or stage in stages:
            continue
        why = _NO_PRECISION.get(stage) if key == "precision" else None
        where = why or f"it is an option of {' and '.join(f'dk run {s}' for s in stages)}"
        raise UsageError(f"{spelling(key)} does nothing in 'dk run {stage}' ({where}); drop it")
    _check_pair(given, "plugin", "plugins", "--plugin NAME for one engine or --plugins A,B for several")
    _check_pair(given, "precision", "precisions", "--precision P for one or --precisions P,Q for several")


def refuse_unread(command: str, given: dict[str, Any], unread: dict[str, str]) -> None:
    """One :class:`UsageError` for the first option of ``unread`` (keyword -> why ``command`` has no
    use for it) given a value, worded as :func:`check_stage_options` words it for ``dk run``."""
    for key, why in unread.items():
        if given.get(key) not in (None, False):
            raise UsageError(f"{spelling(key)} does nothing in '{command}' ({why}); drop it")


def spelling(key: str) -> str:
    return SPELLING.get(key, "--" + key.replace("_", "-"))


def _check_pair(given: dict[str, Any], one: str, many: str, advice: str) -> None:
    if given.get(one) and given.get(many):
        raise UsageError(f"{spelling(one)} {given[one]} and {spelling(many)} {given[many]} both say what to run; "
                         f"give {advice}")
