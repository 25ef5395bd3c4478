"""The ranking's ``median`` is NumPy's median, bit for bit (it replaces it on the hot path)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from actors.ranking.anomaly import median

FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(FLOATS, min_size=1, max_size=200))
def test_median_is_numpys_median(values: list[float]) -> None:
    with np.errstate(over="ignore"):    # two values near the float limit: NumPy's mean overflows to inf too
        expected = float(np.median(values))
    assert median(values) == expected
    assert median(np.asarray(values)) == expected


def test_nan_and_empty_give_nan_like_numpy() -> None:
    assert math.isnan(median([1.0, float("nan"), 3.0]))
    assert math.isnan(median([]))
    assert median([3.0, 1.0]) == 2.0 and median([5.0]) == 5.0
