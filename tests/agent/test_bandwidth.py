"""The bandwidth cap while a backlog drains, measured from what the receiver got; lane order.

The issue asks for the cap to hold within 10 % over any 60 s window. The bound of a token bucket
is ``rate * w + burst + one request`` bytes in any ``w`` seconds, so what matters is the ratio of
burst and request size to ``rate * w``. The test compresses time: a higher rate and a shorter
window (``WINDOW_S``) with burst and requests in the same proportion as at 60 s.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fleetwatch.agent.bandwidth import TokenBucket
from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.lanes import lane_of
from fleetwatch.agent.runner import Agent
from fleetwatch.agent.workload import GatewayWorkload
from tests.agent.conftest import Receiver

RATE = 15_000.0  # bytes/s
WINDOW_S = 5.0
BURST = 2048


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def max_window_bytes(arrivals: list[tuple[float, int]], window_s: float) -> int:
    """The most bytes in any window of ``window_s`` that starts at an arrival."""
    best = 0
    for i, (start, _) in enumerate(arrivals):
        total = sum(n for at, n in arrivals[i:] if at <= start + window_s)
        best = max(best, total)
    return best


def test_the_bucket_bound_holds_for_any_request_sizes() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000.0, 500.0, clock=clock)
    rng = random.Random(7)
    sent: list[tuple[float, int]] = []
    for _ in range(2000):
        clock.now += bucket.delay()
        size = rng.randrange(1, 1500)
        bucket.spend(size)
        sent.append((clock.now, size))
        clock.now += rng.random() * 0.01
    for window in (1.0, 10.0, 60.0):
        assert max_window_bytes(sent, window) <= 1000.0 * window + 500 + 1500
    span = sent[-1][0] - sent[0][0]
    assert sum(n for _, n in sent) <= 1000.0 * span + 500 + 1500


@pytest.mark.slow
def test_a_draining_backlog_holds_the_cap_and_sends_health_first(
    receiver: Receiver, tmp_path: Path
) -> None:
    conf = AgentSettings(
        uplink="ingest",
        uplink_url=receiver.url,
        bandwidth_bytes_per_s=RATE,
        bandwidth_burst_bytes=BURST,
        batch_max_samples=1500,
        buffer_max_bytes=2**30,
    )
    agent = Agent(conf, buffer_dir=tmp_path)
    workload = GatewayWorkload(20)
    for _ in range(80):  # the backlog of an outage: 96k samples, ~17 s at the cap
        agent.ingest(workload.tick())
    while agent.ship_once() == "accepted":
        pass
    stats = agent.stats()
    agent.stop()

    assert stats["samples_sent"] == 80 * 1200 and stats["dropped"] == {}
    arrivals = [(a.at, a.wire_bytes) for a in receiver.arrivals]
    assert arrivals[-1][0] - arrivals[0][0] > 3 * WINDOW_S  # long enough to measure windows
    largest = max(n for _, n in arrivals)
    assert largest + BURST <= 0.1 * RATE * WINDOW_S  # same proportion as the 60 s
    assert max_window_bytes(arrivals, WINDOW_S) <= 1.1 * RATE * WINDOW_S
    # Strict priority: every health sample before the first thermal one, thermal before bulk.
    rank = {"health": 0, "thermal": 1, "bulk": 2}
    order = [rank[lane_of(s.name)] for a in receiver.arrivals for s in a.samples]
    assert order == sorted(order)
