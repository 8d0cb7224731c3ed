"""The engine interface every backend returns from ``dk_load_engine``, and input validation."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from numpy import ndarray

from dk.errors import InputError
from dk.specs import TensorSpec


class Engine:
    """An artifact opened on a device, ready to run.

    Subclasses set ``inputs``, ``outputs``, ``device`` and ``name`` and implement :meth:`infer`;
    they call :func:`check_inputs` first so that every engine rejects bad input the same way.
    Engines are context managers: ``with load(...) as engine: engine.infer(feeds)``.
    """

    name: str = "engine"
    device: str = "cpu"
    precision: str = "fp32"
    inputs: Sequence[TensorSpec] = ()
    outputs: Sequence[TensorSpec] = ()
    #: Batches the engine can have in flight at once through ``infer_many(list_of_feeds)`` (for
    #: example OpenVINO's throughput mode); above 1, ``dk run bench`` also measures that throughput.
    parallel_requests: int = 1

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: numpy arrays by input name in, numpy arrays by output name out."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine's resources. Safe to call twice."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "precision": self.precision,
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
        }


class InputChecker:
    """Fast validation of feeds against input specs (a few microseconds per call).

    Checks names, numpy-ness, dtype, rank, fixed dims, and dynamic dims against the
    ``min_shape``/``max_shape`` range the engine was built for.
    """

    def __init__(self, specs: Sequence[TensorSpec]):
        self._specs = [
            (s.name, np.dtype(s.dtype), len(s.shape), s.shape, s.min_shape, s.max_shape) for s in specs
        ]
        self._names = {s.name for s in specs}
        # Fast path: per input, its dtype, rank and the fixed trailing dims after any dynamic ones
        # (a dynamic batch followed by fixed C, H, W is one tuple comparison). Inputs with a
        # dynamic dim after a fixed one, or with a shape range, go through the full check.
        self._fast: list[tuple[str, np.dtype, int, int, tuple[int, ...]]] | None = []
        for name, dtype, rank, shape, lo, hi in self._specs:
            start = next((i for i in range(rank, 0, -1) if isinstance(shape[i - 1], str)), 0)
            if lo is not None or hi is not None or any(isinstance(d, str) for d in shape[start:]):
                self._fast = None
                break
            self._fast.append((name, dtype, rank, start, tuple(shape[start:])))

    def __call__(self, inputs: Mapping[str, Any]) -> None:
        fast = self._fast
        if fast is not None and len(inputs) == len(fast):
            for name, dtype, rank, start, tail in fast:
                array = inputs.get(name)
                if type(array) is not ndarray or array.dtype != dtype or array.ndim != rank \
                        or array.shape[start:] != tail:
                    break
            else:
                return
        self.explain(inputs)

    def explain(self, inputs: Mapping[str, Any]) -> None:
        """The full check: raise :class:`InputError` naming the first problem found."""
        if len(inputs) != len(self._specs):
            extra = sorted(set(inputs) - self._names)
            missing = sorted(self._names - set(inputs))
            raise InputError(_names_message(extra, missing, self._names))
        for name, dtype, rank, shape, lo, hi in self._specs:
            array = inputs.get(name)
            if array is None:
                raise InputError(_names_message(sorted(set(inputs) - self._names), [name], self._names))
            if not isinstance(array, np.ndarray):
                raise InputError(f"input {name!r} must be a numpy array, got {type(array).__name__}")
            if array.dtype != dtype:
                raise InputError(f"input {name!r} has dtype {array.dtype}, expected {dtype}; cast it with .astype({dtype.name!r})")
            if array.ndim != rank:
                raise InputError(
                    f"input {name!r} has rank {array.ndim} (shape {list(array.shape)}), expected rank {rank} "
                    f"(shape {_fmt(shape)})"
                )
            for axis, (got, want) in enumerate(zip(array.shape, shape)):
                if isinstance(want, int):
                    if got != want:
                        raise InputError(
                            f"input {name!r} has shape {list(array.shape)}, expected {_fmt(shape)} "
                            f"(axis {axis} must be {want})"
                        )
                elif (lo is not None and got < lo[axis]) or (hi is not None and got > hi[axis]):
                    raise InputError(f"input {name!r} axis {axis} ({want}) is {got}, "
                                     + _range_advice(lo[axis] if lo else None, hi[axis] if hi else None))


def check_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` with one clear line when ``inputs`` do not match ``specs``."""
    InputChecker(specs)(inputs)


def _range_advice(lo: int | None, hi: int | None) -> str:
    """The bounds an axis was built for and the export option that widens them, naming only the
    bounds that are known (a profile with only ``--max-shapes`` has no lower bound)."""
    if lo is not None and hi is not None:
        return (f"outside the range {lo}..{hi} the engine was built for; "
                "re-export with wider --min-shapes/--max-shapes")
    if hi is not None:
        return f"but the engine was built for at most {hi}; re-export with a larger --max-shapes"
    return f"but the engine was built for at least {lo}; re-export with a smaller --min-shapes"


def _fmt(shape: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _names_message(extra: list[str], missing: list[str], expected: set[str]) -> str:
    parts = []
    if missing:
        parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"unknown input(s) {', '.join(map(repr, extra))}")
    return "; ".join(parts) + f"; the engine expects {', '.join(map(repr, sorted(expected)))}"


def random_inputs(specs: Sequence[TensorSpec], batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds matching ``specs`` (dynamic batch set to ``batch``), for benches and checks."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = spec.concrete_shape(batch)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return feeds
