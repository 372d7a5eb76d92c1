"""Per-token ingest rate limits: an in-memory token bucket per API token.

Each process keeps its own buckets: with N API workers a token may reach N times the rate,
which is the documented trade-off for needing no shared state.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    level: float
    updated: float


class TokenBucketLimiter:
    """``rate`` units per second, at most ``burst`` at once, per key (the API token id)."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, amount: float) -> float:
        """Take ``amount`` from ``key``'s bucket: 0.0 when granted, else seconds to wait.

        A request larger than the whole bucket is granted when the bucket is full (it can never
        fit otherwise) and leaves the bucket in debt, so the rate still holds on average.
        """
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.level = min(self.burst, bucket.level + (now - bucket.updated) * self.rate)
            bucket.updated = now
            needed = min(amount, self.burst)
            if bucket.level >= needed:
                bucket.level -= amount
                return 0.0
            return (needed - bucket.level) / self.rate

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
