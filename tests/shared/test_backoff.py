"""shared.backoff: full jitter stays under the doubling bound and the cap."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.backoff import full_jitter


@given(attempts=st.integers(min_value=0, max_value=10_000), seed=st.integers())
def test_within_bounds(attempts: int, seed: int) -> None:
    wait = full_jitter(attempts, 30.0, 600.0, random.Random(seed))
    assert 0 <= wait <= min(600.0, 30.0 * 2 ** min(attempts, 62))


def test_spreads_over_the_whole_range() -> None:
    rng = random.Random(3)
    waits = [full_jitter(10, 30.0, 600.0, rng) for _ in range(2000)]
    assert min(waits) < 60 and max(waits) > 540


def test_refuses_negative_input() -> None:
    with pytest.raises(ValueError):
        full_jitter(-1, 1.0, 1.0)
