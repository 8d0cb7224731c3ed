"""Tolerances by precision and the comparison of two engines' outputs (numpy only).

Shared by the conformance kit and ``dk compare``; it must not import pytest or hypothesis.

fp32 and fp16 are judged element by element like ``numpy.allclose``, with the absolute tolerance
scaled by the reference output's largest magnitude (at least 1), so that logits of size 30 get
the same relative slack as logits of size 1. int8 is judged as a classifier would be: top-1
agreement for 2-D outputs and cosine similarity.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import attrs
import numpy as np

#: Relative errors are measured against ``|reference|`` floored at this fraction of the output's
#: largest magnitude, so that references at (or near) zero do not make them infinite.
REL_FLOOR = 1e-6


@attrs.frozen
class Tolerance:
    """How close a candidate output must be to the reference at one precision.

    :ivar rtol/atol: Element-wise bound ``|c - r| <= atol * max(1, max|r|) + rtol * |r|``;
        ``None`` for precisions judged only by ``min_cosine`` and ``min_top1`` (int8).
    :ivar min_cosine: Lowest cosine similarity allowed between candidate and reference.
    :ivar min_top1: Lowest top-1 agreement allowed for 2-D (batch, classes) outputs, or ``None``.
    """

    precision: str
    rtol: float | None
    atol: float | None
    min_cosine: float
    min_top1: float | None = None

    @property
    def elementwise(self) -> bool:
        return self.rtol is not None and self.atol is not None


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance("fp32", rtol=1e-5, atol=1e-5, min_cosine=0.99999),
    "fp16": Tolerance("fp16", rtol=1e-2, atol=1e-2, min_cosine=0.999),
    "int8": Tolerance("int8", rtol=None, atol=None, min_cosine=0.98, min_top1=0.95),
}


def tolerance_for(precision: str) -> Tolerance:
    """The :class:`Tolerance` of ``precision`` (``fp32``, ``fp16`` or ``int8``)."""
    try:
        return TOLERANCES[precision]
    except KeyError:
        known = sorted(TOLERANCES)
        raise ValueError(f"no tolerance for precision {precision!r}; expected one of {known}") from None


@attrs.frozen
class OutputComparison:
    """The errors of one output; ``top1`` is ``None`` unless the output is 2-D."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    mean_rel: float
    cosine: float
    top1: float | None
    passed: bool
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "shape": list(self.shape), "failures": list(self.failures)}


@attrs.frozen
class ComparisonResult:
    """The comparison of every output of a candidate with the reference at one precision."""

    precision: str
    tolerance: Tolerance
    outputs: dict[str, OutputComparison]
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures and all(o.passed for o in self.outputs.values())

    def summary(self) -> str:
        """One line per output with its errors and, where it failed, why."""
        lines = [f"precision {self.precision}: {'passed' if self.passed else 'FAILED'}", *self.failures]
        for o in self.outputs.values():
            top1 = "" if o.top1 is None else f" top1={o.top1:.4f}"
            lines.append(
                f"  {o.name} {list(o.shape)}: max_abs={o.max_abs:.3g} max_rel={o.max_rel:.3g} "
                f"mean_rel={o.mean_rel:.3g} cosine={o.cosine:.6f}{top1}"
                + ("" if o.passed else " -- " + "; ".join(o.failures))
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "passed": self.passed,
            "tolerance": attrs.asdict(self.tolerance),
            "failures": list(self.failures),
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
        }


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two flattened arrays (1.0 when both are all zeros)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of rows of two (batch, classes) arrays whose argmax agrees."""
    return float(np.mean(np.argmax(reference, axis=1) == np.argmax(candidate, axis=1)))


def compare_output(name: str, reference: Any, candidate: Any, tolerance: Tolerance) -> OutputComparison:
    """Errors of one candidate output against its reference, judged by ``tolerance``."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        nan = float("nan")
        why = f"shape {list(cand.shape)} differs from the reference's {list(ref.shape)}"
        return OutputComparison(name, tuple(ref.shape), nan, nan, nan, 0.0, None, False, (why,))
    failures = []
    if not np.all(np.isfinite(cand) == np.isfinite(ref)):
        failures.append("non-finite values where the reference has finite ones (or the reverse)")
    finite = np.isfinite(ref) & np.isfinite(cand)
    ref_f, cand_f = np.where(finite, ref, 0.0), np.where(finite, cand, 0.0)
    diff = np.abs(cand_f - ref_f)
    scale = max(1.0, float(np.max(np.abs(ref_f)))) if ref.size else 1.0
    floor = REL_FLOOR * max(float(np.max(np.abs(ref_f))) if ref.size else 0.0, np.finfo(np.float32).tiny)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff / np.maximum(np.abs(ref_f), floor)).max()) if diff.size else 0.0
    total = float(np.abs(ref_f).sum())
    mean_rel = float(diff.sum() / total) if total > 0 else (0.0 if max_abs == 0 else float("inf"))
    cosine = cosine_similarity(ref_f, cand_f)
    top1 = top1_agreement(ref_f, cand_f) if ref.ndim == 2 and ref.shape[0] > 0 else None

    if tolerance.elementwise:
        bound = tolerance.atol * scale + tolerance.rtol * np.abs(ref_f)
        outside = int(np.count_nonzero(diff > bound))
        if outside:
            failures.append(
                f"{outside} of {diff.size} elements outside atol={tolerance.atol:g}*{scale:.3g} + "
                f"rtol={tolerance.rtol:g}*|ref|"
            )
    if cosine < tolerance.min_cosine:
        failures.append(f"cosine similarity {cosine:.6f} < {tolerance.min_cosine}")
    if tolerance.min_top1 is not None and top1 is not None and top1 < tolerance.min_top1:
        failures.append(f"top-1 agreement {top1:.4f} < {tolerance.min_top1}")
    return OutputComparison(name, tuple(ref.shape), max_abs, max_rel, mean_rel, cosine, top1,
                            not failures, tuple(failures))


def _as_outputs(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {"output": value}


def check_declared_outputs(outputs: Mapping[str, Any], declared: Sequence[Any], batch: int | None = None) -> list[str]:
    """What is wrong with ``outputs`` against the engine's declared output specs (objects with
    ``name``, ``shape``, ``dtype``: :class:`dk.specs.TensorSpec`): a missing output, a dtype other
    than the declared one (no casting first), a rank or fixed dimension that differs, a dynamic
    batch axis that is not ``batch``. Empty when everything matches."""
    failures = []
    for spec in declared:
        if spec.name not in outputs:
            failures.append(f"declared output {spec.name!r} is missing; the engine returned {sorted(outputs)}")
            continue
        value = outputs[spec.name]
        dtype = str(getattr(value, "dtype", type(value).__name__))
        if dtype != spec.dtype:
            failures.append(f"output {spec.name!r} is {dtype}, but the engine declares {spec.dtype}")
        shape = tuple(getattr(value, "shape", ()))
        if len(shape) != len(spec.shape):
            failures.append(f"output {spec.name!r} has shape {list(shape)}, rank {len(shape)}; the engine declares "
                            f"{list(spec.shape)}")
            continue
        for axis, (got, want) in enumerate(zip(shape, spec.shape)):
            if isinstance(want, int) and got != want:
                failures.append(f"output {spec.name!r} axis {axis} is {got}, but the engine declares {want}")
            elif axis == 0 and isinstance(want, str) and batch is not None and got != batch:
                failures.append(f"output {spec.name!r} batch axis is {got} for a batch of {batch}")
    return failures


def compare_outputs(
    reference: Mapping[str, Any] | np.ndarray,
    candidate: Mapping[str, Any] | np.ndarray,
    precision: str = "fp32",
    tolerance: Tolerance | None = None,
    declared: Sequence[Any] | None = None,
) -> ComparisonResult:
    """Compare every reference output with the candidate's output of the same name.

    :param precision: Picks the tolerance (``fp32``, ``fp16``, ``int8``) unless ``tolerance`` is given.
    :param declared: The candidate engine's output specs; when given, a dtype or shape other than
        declared fails the comparison (see :func:`check_declared_outputs`).
    A bare array on either side is treated as a single output named ``output``.
    """
    tolerance = tolerance or tolerance_for(precision)
    ref, cand = _as_outputs(reference), _as_outputs(candidate)
    failures = []
    if missing := sorted(set(ref) - set(cand)):
        failures.append(f"candidate lacks output(s) {missing}; it has {sorted(cand)}")
    outputs = {name: compare_output(name, ref[name], cand[name], tolerance) for name in ref if name in cand}
    for spec in declared or ():
        wrong = check_declared_outputs(cand, [spec])
        if wrong and spec.name in outputs:  # the output's own row fails, saying why
            o = outputs[spec.name]
            outputs[spec.name] = attrs.evolve(o, passed=False, failures=(*wrong, *o.failures))
        else:
            failures += wrong
    return ComparisonResult(precision, tolerance, outputs, tuple(failures))


def assert_outputs_close(
    candidate: Mapping[str, Any] | np.ndarray,
    reference: Mapping[str, Any] | np.ndarray,
    precision: str = "fp32",
    what: str = "candidate",
) -> ComparisonResult:
    """Raise ``AssertionError`` (with every output's errors) unless ``candidate`` is within the
    magnitude-scaled tolerance of ``precision`` of ``reference``; return the comparison.

    Use it instead of a fixed ``atol`` whenever two engines (or two kernels) compute the same
    outputs: their float rounding differs with the CPU's instruction set, by an amount that grows
    with the outputs' magnitude."""
    result = compare_outputs(reference, candidate, precision)
    if not result.passed:
        raise AssertionError(f"{what} differs from the reference beyond {precision} tolerance:\n{result.summary()}")
    return result
