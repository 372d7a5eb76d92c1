"""The uplink bandwidth cap: a token bucket over bytes actually put on the wire.

Tokens accrue at ``rate`` bytes/s up to ``burst``. A request spends its full size even when that
is more than the bucket holds; the balance then goes negative and the next request waits until it
is paid back. So over any window of ``w`` seconds at most ``rate * w + burst`` bytes leave, plus one
request (keep requests small relative to ``rate * w``; the agent splits its batches to that end).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Bytes a request costs beyond its body: request line, headers, the response and TCP/IP framing
# (about 40 bytes of headers per segment at a 1460-byte MSS). An estimate, deliberately high.
HTTP_REQUEST_OVERHEAD = 400
TCP_OVERHEAD_PER_BYTE = 40 / 1460


def wire_bytes(body_bytes: int, header_bytes: int = 0) -> int:
    """Estimated bytes on the wire for one HTTP request with its response."""
    payload = body_bytes + header_bytes + HTTP_REQUEST_OVERHEAD
    return int(payload * (1 + TCP_OVERHEAD_PER_BYTE)) + 1


class TokenBucket:
    """Average ``rate`` bytes/s with bursts up to ``burst`` bytes. Not thread-safe: one sender."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds to wait before the next request may start (0 when the balance is positive)."""
        self._refill()
        return 0.0 if self._tokens > 0 else -self._tokens / self.rate

    def spend(self, n_bytes: int) -> None:
        """Charge bytes that were sent (or are about to be)."""
        self._refill()
        self._tokens -= n_bytes
