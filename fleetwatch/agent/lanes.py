"""Priority lanes: which samples are shipped first and dropped last.

``health`` carries device and component state (never dropped by the buffer), ``thermal`` the
temperatures, trip points, clocks, fans and power that predict throttling, ``bulk`` everything
else. After an outage the backlog drains in that order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from fleetwatch.telemetry import Sample

Lane = Literal["health", "thermal", "bulk"]
LANES: tuple[Lane, ...] = ("health", "thermal", "bulk")  # drain order, highest priority first

HEALTH_METRICS = frozenset(
    {
        "component_state",
        "device_healthy",
        "deployment_status",
        "module_availability_ratio",
        "module_restarts_total",
        "uplink_offline_total",
    }
)
THERMAL_METRICS = frozenset(
    {
        "temperature_celsius",
        "thermal_trip_point_celsius",
        "thermal_headroom_celsius",
        "coral_tpu_clock_hertz",
        "fan_speed_rpm",
        "fan_pwm_ratio",
        "power_watts",
    }
)
# Source-specific names that are not in the catalogue still land in the right lane by their shape.
_THERMAL_HINTS = ("temperature", "thermal", "_celsius", "clock_hertz", "fan_", "_watts")
_HEALTH_HINTS = ("_healthy", "_state", "_status", "availability", "restarts")


def lane_of(name: str) -> Lane:
    """The lane of a metric name (pure; catalogue names first, then name shape)."""
    if name in HEALTH_METRICS:
        return "health"
    if name in THERMAL_METRICS:
        return "thermal"
    if any(hint in name for hint in _HEALTH_HINTS):
        return "health"
    if any(hint in name for hint in _THERMAL_HINTS):
        return "thermal"
    return "bulk"


def lane_quotas(
    limit: int, backlog: Mapping[Lane, int], shares: Mapping[Lane, float] | None = None
) -> dict[Lane, int]:
    """How many samples of each lane go into one request of ``limit`` samples.

    Strict priority (``shares`` None) fills the request in lane order. With shares, each lane
    first gets its fraction of the request (at most its backlog); what is left over goes to the
    lanes that still have backlog, in lane order, so a request is never sent half empty."""
    total_share = sum(shares.values()) if shares else 0.0
    quotas: dict[Lane, int] = {}
    for lane in LANES:
        share = (shares or {}).get(lane, 0.0) / total_share if total_share else 0.0
        quotas[lane] = min(backlog.get(lane, 0), int(limit * share))
    spare = limit - sum(quotas.values())
    for lane in LANES:
        extra = min(spare, backlog.get(lane, 0) - quotas[lane])
        quotas[lane] += extra
        spare -= extra
    return quotas


def split_by_lane(samples: list[Sample], forced: Lane | None = None) -> dict[Lane, list[Sample]]:
    """Group a collection's samples by lane; ``forced`` puts them all in one lane."""
    out: dict[Lane, list[Sample]] = {}
    for s in samples:
        out.setdefault(forced or lane_of(s.name), []).append(s)
    return out
