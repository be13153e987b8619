"""The one backoff helper: capped exponential, with full jitter for contending callers."""

from __future__ import annotations

import random

from lambdas.common.backoff import BATCH_RETRY, Backoff


def test_backoff_is_full_jitter_below_an_exponential_cap() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=4.0, rng=random.Random(1))
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0)]:
        delays = [backoff.delay(retry) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used, not a fixed delay


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=4.0)
    assert [backoff.ceiling(retry) for retry in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [BATCH_RETRY.ceiling(attempt) for attempt in (1, 2, 3, 4, 5)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.0,
    ]
