"""A deterministic synthetic gateway workload: what one edge gateway's devices report.

Used by ``fleetwatch bench agent`` and the agent's tests (and usable by the demo) until the fleet
simulator offers a per-gateway sample stream. Each device has 60 series in the three lanes, with
the precision the real sources give: millidegree temperatures, milliwatt power, integer percent
CPU load, byte counters, 0/1 state series, and a few full-precision ratios.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from fleetwatch.telemetry import Sample

COMPONENTS = ("com.example.Inference", "com.example.Camera", "aws.greengrass.Nucleus")
STATES = ("RUNNING", "ERRORED", "BROKEN")
SENSORS = ("cpu", "gpu", "soc0", "soc1", "soc2", "cv0", "tj", "ao")
RAILS = ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC", "VDD_DDR")
MODULES = ("edgeAgent", "edgeHub", "inference")


@dataclass(slots=True)
class _Series:
    name: str
    labels: dict[str, str]
    kind: str  # state constant milli percent counter bytes ratio uptime walk_int
    value: float


def device_series(device: str, site: str) -> list[_Series]:
    """The 60 series of one device, with their starting values."""
    base = {"device": device, "site": site}
    out = [_Series("device_healthy", dict(base), "state", 1.0)]
    for comp in COMPONENTS:
        for state in STATES:
            value = 1.0 if state == "RUNNING" else 0.0
            out.append(
                _Series(
                    "component_state", {**base, "component": comp, "state": state}, "state", value
                )
            )
    out.append(
        _Series(
            "deployment_status", {**base, "deployment": "d-1", "status": "SUCCEEDED"}, "state", 1
        )
    )
    for mod in MODULES:
        out.append(_Series("module_restarts_total", {**base, "module": mod}, "counter", 0.0))
    for sensor in SENSORS:
        out.append(_Series("temperature_celsius", {**base, "sensor": sensor}, "milli", 45.0))
    for trip, kind in enumerate(("passive", "hot")):
        labels = {**base, "sensor": "cpu", "trip": str(trip), "type": kind}
        out.append(_Series("thermal_trip_point_celsius", labels, "constant", 96.5 + 4 * trip))
    for rail in RAILS:
        out.append(_Series("power_watts", {**base, "rail": rail}, "milli", 2.5))
    out.append(_Series("fan_speed_rpm", {**base, "fan": "pwmfan"}, "walk_int", 2400.0))
    out.append(_Series("fan_pwm_ratio", {**base, "fan": "pwmfan"}, "ratio", 0.5))
    for core in range(8):
        out.append(_Series("cpu_utilization_ratio", {**base, "core": str(core)}, "percent", 0.3))
    out.append(_Series("cpu_utilization_ratio", dict(base), "ratio", 0.3))
    out.append(_Series("gpu_utilization_ratio", dict(base), "percent", 0.4))
    out.append(_Series("memory_used_bytes", dict(base), "bytes", 3.2e9))
    out.append(_Series("memory_total_bytes", dict(base), "constant", 8e9))
    out.append(_Series("disk_free_bytes", {**base, "disk": "mmcblk0p1"}, "bytes", 2.1e10))
    out.append(_Series("disk_total_bytes", {**base, "disk": "mmcblk0p1"}, "constant", 6.4e10))
    for mod in MODULES:
        labels = {**base, "module": mod}
        out.append(_Series("network_receive_bytes_total", labels, "counter", 1e6))
        out.append(_Series("network_transmit_bytes_total", labels, "counter", 5e5))
        out.append(_Series("memory_used_bytes", labels, "bytes", 2e8))
        out.append(_Series("module_availability_ratio", labels, "ratio", 1.0))
    out.append(_Series("uplink_offline_total", dict(base), "counter", 0.0))
    out.append(_Series("host_uptime_seconds", dict(base), "uptime", 86_400.0))
    for prio in ("0", "2000000000"):
        labels = {**base, "endpoint": "iothub", "priority": prio}
        out.append(_Series("message_queue_length", labels, "walk_int", 0.0))
    return out


def _step(s: _Series, rng: random.Random) -> float:
    """Advance one series by one interval, keeping the precision of its real source."""
    k = s.kind
    if k == "state":
        if rng.random() < 0.002:
            s.value = 1.0 - s.value
    elif k == "milli":
        s.value = round(s.value + rng.gauss(0, 0.12), 3)
    elif k == "percent":
        s.value = min(1.0, max(0.0, round(s.value + rng.gauss(0, 0.05), 2)))
    elif k == "counter":
        s.value += float(rng.randrange(0, 20_000) if s.name.startswith("network") else 0)
    elif k == "bytes":
        s.value = float(max(0, int(s.value) + rng.randrange(-4096, 4096) * 1024))
    elif k == "ratio":
        s.value = min(1.0, max(0.0, s.value + rng.gauss(0, 0.01)))
    elif k == "uptime":
        s.value += 10.0
    elif k == "walk_int":
        s.value = float(max(0, int(s.value) + rng.randrange(-3, 4)))
    return s.value


class GatewayWorkload:
    """``n_devices`` devices of one site reporting every ``interval_ms``; same seed, same data."""

    def __init__(
        self,
        n_devices: int,
        *,
        site: str = "site-a",
        start_ms: int = 1_764_806_400_000,
        interval_ms: int = 10_000,
        seed: int = 1,
    ) -> None:
        self.rng = random.Random(seed)
        self.interval_ms = interval_ms
        self.next_ms = start_ms
        self.series = [s for d in range(n_devices) for s in device_series(f"jetson-{d:03d}", site)]

    def tick(self) -> list[Sample]:
        """The samples of the next interval, one per series."""
        ts = self.next_ms
        self.next_ms += self.interval_ms
        return [Sample(s.name, s.labels, _step(s, self.rng), ts) for s in self.series]

    def ticks(self, n: int) -> Iterator[list[Sample]]:
        for _ in range(n):
            yield self.tick()
