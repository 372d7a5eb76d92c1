"""Which limit each series is forecast against, read from the devices' own telemetry.

* ``temperature_celsius{sensor}``: the lowest throttling trip point of that sensor not yet
  reached (Coral trip points 0..2; Jetson passive/hot/critical trips — active trips only start
  a fan), as the device reports it in ``thermal_trip_point_celsius``. Never assumed defaults.
* ``disk_free_bytes{disk}``: a floor at ``disk_full_ratio`` x ``disk_total_bytes{disk}``.
* ``memory_used_bytes`` (device, or IoT Edge ``module="host"``): ``memory_limit_ratio`` x
  ``memory_total_bytes`` of the same scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

THROTTLING_TRIP_TYPES = frozenset({"throttle", "passive", "hot", "critical"})


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # trip_point_0, disk_full, memory_limit
    value: float
    rising: bool  # True: the series must stay below; False: a floor


def _text(value: object) -> str:
    """A label cell as text: absent labels come back from pandas as None or NaN."""
    return value if isinstance(value, str) else ""


def _group_key(row: Mapping[str, object], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_text(row.get(k)) for k in keys)


def trip_points(latest_trips: pd.DataFrame) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """(device, sensor) -> sorted [(celsius, trip)] of the throttling trip points."""
    out: dict[tuple[str, str], list[tuple[float, str]]] = {}
    if latest_trips.empty:
        return out
    for row in latest_trips.to_dict("records"):
        kind = (_text(row.get("type")) or "throttle").lower()
        if kind not in THROTTLING_TRIP_TYPES:
            continue
        key = (_text(row["device"]), _text(row.get("sensor")))
        out.setdefault(key, []).append((float(row["value"]), _text(row.get("trip")) or "0"))
    for trips in out.values():
        trips.sort()
    return out


def totals(latest: pd.DataFrame, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    """Latest value per label combination (a label a series lacks counts as "")."""
    if latest.empty:
        return {}
    return {
        _group_key({str(k): v for k, v in r.items()}, keys): float(r["value"])
        for r in latest.to_dict("records")
    }


def limit_for(
    metric: str,
    labels: Mapping[str, str],
    level: float,
    *,
    trips: Mapping[tuple[str, str], list[tuple[float, str]]],
    disk_totals: Mapping[tuple[str, ...], float],
    memory_totals: Mapping[tuple[str, ...], float],
    disk_full_ratio: float,
    memory_limit_ratio: float,
) -> Limit | None:
    """The limit of one series, or None when it has none (most series)."""
    device = labels.get("device", "")
    if metric == "temperature_celsius":
        candidates = trips.get((device, labels.get("sensor", "")), [])
        for celsius, trip in candidates:
            if level < celsius:
                return Limit(f"trip_point_{trip}", celsius, True)
        if candidates:  # past every trip point: the last one is still the limit to report
            celsius, trip = candidates[-1]
            return Limit(f"trip_point_{trip}", celsius, True)
        return None
    if metric == "disk_free_bytes":
        total = disk_totals.get((device, labels.get("disk", "")))
        return Limit("disk_full", disk_full_ratio * total, False) if total else None
    if metric == "memory_used_bytes":
        module = labels.get("module", "")
        if module not in ("", "host"):
            return None
        total = memory_totals.get((device, module))
        return Limit("memory_limit", memory_limit_ratio * total, True) if total else None
    return None
