"""The one retry/backoff helper: exponential, capped, with full jitter where callers contend.

Standard library only: it ships in every function's asset (``lambdas/common``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Unprocessed keys of a BatchGetItem (throttling) are asked for again after a short pause, as
# the SDK's own retries would: 0.1 s, 0.2 s, ... at most 1 s.
BATCH_RETRY_BASE_SECONDS = 0.05
BATCH_RETRY_CAP_SECONDS = 1.0


@dataclass
class Backoff:
    """Exponential backoff: ``ceiling(n) = min(cap, base * 2**n)`` after retry ``n``."""

    base_seconds: float
    cap_seconds: float
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, retry: int) -> float:
        """The plain exponential delay (one caller retrying alone)."""
        return min(self.cap_seconds, self.base_seconds * 2.0**retry)

    def delay(self, retry: int) -> float:
        """Full jitter, a delay drawn from ``[0, ceiling(retry)]``: callers that retry together
        (throttled invocations) spread out instead of colliding again."""
        return self.rng.uniform(0, self.ceiling(retry))


BATCH_RETRY = Backoff(BATCH_RETRY_BASE_SECONDS, BATCH_RETRY_CAP_SECONDS)
