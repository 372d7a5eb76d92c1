"""Coral Edge TPU (PCIe/M.2 apex driver) thermal state from ``/sys/class/apex/apex_N/``.

Everything is derived from the values read, never from the driver's defaults (other driver
builds use other ones): the throttled clock counts the trip points the temperature has reached
(the driver's test is ``temp >= trip``): 500 MHz below trip 0, then 250, 125 and 62.5 MHz.
The USB Accelerator has no thermal interface at all, so it yields nothing here.
"""

from __future__ import annotations

from pathlib import Path

from collectors.sysfs import Missing, read_attr, read_int, sorted_numerically
from fleetwatch.plugins import CollectError, CollectResult, make_sample
from fleetwatch.telemetry import now_ms

FULL_CLOCK_HZ = 500e6  # GCB clock below trip point 0; each trip reached halves it
TRIP_POINTS = 3
HW_WARNINGS = {"hw_temp_warn1": "interrupt", "hw_temp_warn2": "shutdown"}


def read_apex(
    sysfs_root: Path | str, *, device: str, site: str = "default", timestamp_ms: int | None = None
) -> CollectResult:
    """Every ``class/apex/apex_N`` under ``sysfs_root`` (a ``/sys``); bad files become errors."""
    result = CollectResult()
    root = Path(sysfs_root)
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    apex_dirs = sorted_numerically(list((root / "class" / "apex").glob("apex_*")))
    for apex in apex_dirs:
        result.extend(read_one_apex(apex, device=device, site=site, timestamp_ms=ts))
    return result


def read_one_apex(apex: Path, *, device: str, site: str, timestamp_ms: int) -> CollectResult:
    """One ``apex_N`` directory: temperature, trip points, derived clock and headroom."""
    result = CollectResult()
    errors = result.errors
    sensor = apex.name
    labels = {"device": device, "site": site, "sensor": sensor}
    ts = timestamp_ms

    def sample(name: str, value: float, **extra: str) -> None:
        result.samples.append(make_sample(name, {**labels, **extra}, value, ts))

    temp = read_int(apex / "temp", errors)
    if temp is not None:
        sample("temperature_celsius", temp / 1000)
    trips: list[int | None] = [
        read_int(apex / f"trip_point{i}_temp", errors) for i in range(TRIP_POINTS)
    ]
    for i, trip in enumerate(trips):
        if trip is not None:
            sample("thermal_trip_point_celsius", trip / 1000, trip=str(i), type="throttle")
    thresholds = [t for t in trips if t is not None]
    for attr, kind in HW_WARNINGS.items():
        enabled = read_attr(apex / f"{attr}_en")
        if isinstance(enabled, Missing):
            errors.append(CollectError(str(apex / f"{attr}_en"), enabled.reason))
            continue
        if enabled != "1":
            continue  # a disabled hardware warning is no trip point
        value = read_int(apex / attr, errors)
        if value is not None:
            sample("thermal_trip_point_celsius", value / 1000, trip=attr, type=kind)
            thresholds.append(value)
    if temp is None:
        return result
    poll = read_int(apex / "temp_poll_interval", errors)
    if None not in trips and poll is not None:
        if poll > 0:  # 0 turns the driver's polling, and with it frequency scaling, off
            reached = sum(1 for trip in trips if trip is not None and temp >= trip)
            sample("coral_tpu_clock_hertz", FULL_CLOCK_HZ / 2**reached)
    elif None in trips:
        errors.append(CollectError(str(apex), "a trip point is unreadable: clock not derived"))
    ahead = [t for t in thresholds if temp < t]
    if ahead:
        sample("thermal_headroom_celsius", (min(ahead) - temp) / 1000)
    return result
