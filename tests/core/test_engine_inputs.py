"""Every engine rejects bad feeds the same way, with one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from dk.engine import InputChecker, random_inputs
from dk.errors import InputError
from dk.specs import TensorSpec

SPECS = [TensorSpec("input", ("batch", 1, 8, 8), "float32", min_shape=(1, 1, 8, 8), max_shape=(16, 1, 8, 8))]


def test_valid_feeds_pass():
    InputChecker(SPECS)({"input": np.zeros((4, 1, 8, 8), np.float32)})


@pytest.mark.parametrize("feeds, message", [
    ({"input": np.zeros((1, 8, 8), np.float32)}, r"rank 3 \(shape \[1, 8, 8\]\), expected rank 4"),
    ({"input": np.zeros((1, 1, 8, 8), np.float64)}, r"dtype float64, expected float32"),
    ({"input": np.zeros((1, 3, 8, 8), np.float32)}, r"axis 1 must be 1"),
    ({"image": np.zeros((1, 1, 8, 8), np.float32)}, r"missing input\(s\) 'input'; unknown input\(s\) 'image'"),
    ({"input": np.zeros((1, 1, 8, 8), np.float32), "x": np.zeros(1)}, r"unknown input\(s\) 'x'"),
    ({"input": np.zeros((32, 1, 8, 8), np.float32)}, r"is 32, outside the range 1..16"),
    ({"input": [[0.0]]}, r"must be a numpy array, got list"),
])
def test_bad_feeds_raise_one_clear_line(feeds, message):
    with pytest.raises(InputError, match=message) as info:
        InputChecker(SPECS)(feeds)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bounds, batch, message", [
    ({"max_shape": (4, 1, 8, 8)}, 9,
     "input 'input' axis 0 (batch) is 9, but the engine was built for at most 4; re-export with a larger --max-shapes"),
    ({"min_shape": (2, 1, 8, 8)}, 1,
     "input 'input' axis 0 (batch) is 1, but the engine was built for at least 2; re-export with a smaller "
     "--min-shapes"),
])
def test_a_range_with_one_known_bound_names_only_that_bound(bounds, batch, message):
    checker = InputChecker([TensorSpec("input", ("batch", 1, 8, 8), "float32", **bounds)])
    with pytest.raises(InputError) as info:
        checker({"input": np.zeros((batch, 1, 8, 8), np.float32)})
    assert str(info.value) == message


def test_random_inputs_follow_the_specs():
    feeds = random_inputs(SPECS + [TensorSpec("ids", ("batch", 5), "int64")], batch=3)
    assert feeds["input"].shape == (3, 1, 8, 8) and feeds["input"].dtype == np.float32
    assert feeds["ids"].shape == (3, 5) and feeds["ids"].dtype == np.int64
