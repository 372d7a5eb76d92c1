"""Injectable faults with ground truth.

A fault is a kind, a device, a start time and a severity in [0, 1]. While active it changes the
physics (:class:`~fleetwatch.simulate.physics.Effects`) or the runtime; after every step the
simulator checks the fault's failure threshold on the simulated values and records the first
time it is crossed. That time is the ground truth a forecaster is scored against: it comes from
the same series the collectors see, not from a formula.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fleetwatch.simulate import hardware as hw
from fleetwatch.simulate import runtime as rtm
from fleetwatch.simulate.inventory import Device
from fleetwatch.simulate.physics import SENSOR_INDEX, Effects, FleetParams, PhysState

FAULT_KINDS = (
    "fan_failure",
    "dust",
    "disk_fill",
    "memory_leak",
    "crash_loop",
    "failed_deployment",
    "uplink_outage",
    "sensor_stuck",
    "sensor_dropout",
    "degradation",
)
QUEUE_LIMIT = 5000.0  # edgeHub backlog (messages) past which the outage counts as a failure
MEMORY_LIMIT_RATIO = 0.95  # OOM killer territory
DISK_FULL_RATIO = 0.01  # free space left when a disk counts as full
RESTARTS_LIMIT = 5  # module restarts since the fault began


class FaultError(ValueError):
    """A fault that cannot apply to the device it names (e.g. a fan fault on a fanless gateway)."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to break, where, when (epoch seconds or an aware datetime) and how hard (0..1)."""

    kind: str
    device: str
    start: float | datetime
    severity: float = 0.5

    @property
    def start_s(self) -> float:
        if isinstance(self.start, datetime):
            return self.start.timestamp()
        return float(self.start)


@dataclass
class GroundTruth:
    """The truth about one injected fault, as a forecaster should have predicted it."""

    kind: str
    device: str
    site: str
    start: float
    severity: float
    threshold: float | None  # in the unit of the first series
    comparison: str  # ">=", "<=" or "" when the fault has no failure threshold
    series: list[dict[str, Any]]  # {"name": ..., "labels": {...}} where the fault shows
    crossed_at: float | None = None  # first simulated time the threshold was crossed
    expected_failure_at: float | None = None  # known in advance (degradation), else None
    end: float | None = None  # when the fault stops acting (outage), else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "device": self.device,
            "site": self.site,
            "start": iso(self.start),
            "severity": self.severity,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "series": self.series,
            "crossed_at": iso(self.crossed_at),
            "expected_failure_at": iso(self.expected_failure_at),
            "end": iso(self.end),
        }


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat()


@dataclass
class ActiveFault:
    spec: FaultSpec
    index: int
    truth: GroundTruth
    started: bool = False
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class FaultContext:
    """What fault hooks may read and change."""

    devices: list[Device]
    params: FleetParams
    state: PhysState
    runtime: rtm.RuntimeState
    effects: Effects
    rng: np.random.Generator


def eligible(kind: str, device: Device) -> bool:
    """Whether a fault kind can happen on a device (it needs the part and the series)."""
    jetson = device.profile.kind == "jetson"
    if kind in ("fan_failure", "sensor_stuck", "sensor_dropout", "degradation"):
        return jetson
    if kind in ("disk_fill", "uplink_outage"):
        return device.runtime == "iotedge"  # edgeAgent reports disks, edgeHub its backlog
    return kind in FAULT_KINDS


def _lbl(device: Device, **extra: str) -> dict[str, str]:
    return {"device": device.id, "site": device.site, **extra}


def _series(name: str, device: Device, **extra: str) -> dict[str, Any]:
    return {"name": name, "labels": _lbl(device, **extra)}


def make_truth(spec: FaultSpec, device: Device) -> GroundTruth:
    """The ground-truth record of a fault, before the run fills in ``crossed_at``."""
    if spec.kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault kind {spec.kind!r}; known: {', '.join(FAULT_KINDS)}")
    if not eligible(spec.kind, device):
        raise FaultError(
            f"fault {spec.kind!r} cannot happen on {device.id} "
            f"({device.hardware_model}, {device.runtime})"
        )
    p = device.profile
    k = spec.kind
    threshold: float | None = None
    expected: float | None = None
    cmp = ">="
    series: list[dict[str, Any]] = []
    if k in ("fan_failure", "dust") and p.kind == "jetson":
        threshold = p.trip_points[0][0] / 1000.0
        series = [
            _series("temperature_celsius", device, sensor=p.throttle_sensor),
            _series("fan_speed_rpm", device, fan="fan0"),
        ]
    elif k == "dust":
        threshold = hw.CORAL_TRIP_POINTS_MILLIC[0] / 1000.0
        series = [
            _series("temperature_celsius", device, sensor="apex_0"),
            _series("coral_tpu_clock_hertz", device, sensor="apex_0"),
        ]
    elif k == "degradation":
        threshold, cmp = 0.0, "<="
        expected = spec.start_s + degradation_life_s(spec.severity)
        series = [
            _series("fan_speed_rpm", device, fan="fan0"),
            _series("temperature_celsius", device, sensor=p.throttle_sensor),
        ]
    elif k == "disk_fill":
        threshold, cmp = DISK_FULL_RATIO * p.disks[0][1], "<="
        series = [_series("disk_free_bytes", device, disk=p.disks[0][0])]
    elif k == "memory_leak":
        threshold = MEMORY_LIMIT_RATIO * p.memory_bytes
        if device.runtime == "iotedge":
            series = [
                _series("memory_used_bytes", device),
                _series("memory_used_bytes", device, module="objectDetector"),
            ]
        else:
            series = [_series("memory_used_bytes", device)]
    elif k in ("crash_loop", "failed_deployment") and device.runtime == "iotedge":
        threshold = float(RESTARTS_LIMIT)  # restarts since the fault began
        series = [
            _series("module_restarts_total", device, module="objectDetector"),
            _series("module_availability_ratio", device, module="objectDetector"),
        ]
    elif k in ("crash_loop", "failed_deployment"):
        threshold = 1.0
        comp = rtm.GG_COMPONENTS[0][0]
        series = [_series("component_state", device, component=comp, state="BROKEN")]
        series.append(_series("device_healthy", device))
    elif k == "uplink_outage":
        threshold = QUEUE_LIMIT
        series = [
            _series("message_queue_length", device, endpoint="iothub", priority="2000000000"),
            _series("uplink_offline_total", device),
        ]
    else:  # sensor faults: no failure, only a signature
        cmp = ""
        sensor = "cpu" if k == "sensor_stuck" else "gpu"
        series = [_series("temperature_celsius", device, sensor=sensor)]
    return GroundTruth(
        kind=k,
        device=device.id,
        site=device.site,
        start=spec.start_s,
        severity=float(spec.severity),
        threshold=threshold,
        comparison=cmp,
        series=series,
        expected_failure_at=expected,
    )


# --- activation and per-step effects -----------------------------------------------------------


def _hours(severity: float, slow: float, fast: float) -> float:
    """Time scale from severity: ``slow`` hours at 0, ``fast`` hours at 1."""
    return slow + (fast - slow) * min(max(severity, 0.0), 1.0)


def degradation_life_s(severity: float) -> float:
    """How long a wearing fan lasts: 8 h at severity 0, 2 h at severity 1."""
    return _hours(severity, 8.0, 2.0) * 3600.0


def activate(f: ActiveFault, ctx: FaultContext, t: float) -> None:
    """Set a fault's parameters from the device's state at its start."""
    i, s, p, rt = f.index, ctx.state, ctx.params, ctx.runtime
    sev = f.spec.severity
    k = f.spec.kind
    if k == "dust":
        hours = _hours(sev, 4.0, 1.0)  # reach the trip point 1..4 h after start
        if p.is_jetson[i]:
            r_full = p.r_passive[i] / (1.0 + p.fan_gain[i])
            need = (p.trip_mc[i] / 1000.0 - s.ambient_c[i]) / (r_full * max(s.power_w[i], 1.0))
        else:
            apex_w = hw.APEX_IDLE_W + hw.APEX_DYNAMIC_W * s.apex_util[i, 0]
            host_w = p.idle_w[i] + s.cpu[i] * p.cpu_w[i]
            rise = p.r_passive[i] * host_w + hw.APEX_R_C_PER_W * apex_w
            need = (hw.CORAL_TRIP_POINTS_MILLIC[0] / 1000.0 + 1.0 - s.ambient_c[i]) / rise
        f.params["growth_per_s"] = max(need - 1.0, 0.05) / (hours * 3600.0)
        # Dust settles to a limit; past the trip point throttling holds the temperature there.
        f.params["limit"] = max(need, 1.05) * 1.1
    elif k == "fan_failure":
        f.params["residual"] = 0.3 * (1.0 - sev)
    elif k == "degradation":
        f.params["life_s"] = degradation_life_s(sev)
    elif k == "disk_fill":
        total = p.disk_total[i, 0]
        free = total - s.disk_used[i, 0]
        f.params["bps"] = max(free - DISK_FULL_RATIO * total, 0.0) / (_hours(sev, 12.0, 2.0) * 3600)
    elif k == "memory_leak":
        room = MEMORY_LIMIT_RATIO * p.memory_bytes[i] - s.memory_used[i]
        f.params["bps"] = max(room, 1e8) / (_hours(sev, 6.0, 1.0) * 3600.0)
        f.params["origin"] = t
    elif k in ("crash_loop", "failed_deployment"):
        period = 45.0 if k == "failed_deployment" else 600.0 - 540.0 * sev
        rt.crash_every_s[i] = period
        rt.next_crash_t[i] = t + (60.0 if k == "failed_deployment" else period)
        f.params["restarts0"] = rt.module_start[i, rtm.WORKLOAD]  # before the new version starts
        if k == "failed_deployment":
            rtm.start_deployment(rt, i, "2.4.0", ctx.rng)
    elif k == "uplink_outage":
        f.truth.end = t + _hours(sev, 0.5, 6.0) * 3600.0
        rtm.set_uplink(rt, i, True, t)


def apply(f: ActiveFault, ctx: FaultContext, t: float) -> None:
    """Write this fault's effect for the step ending at ``t`` into ``ctx.effects``."""
    i, fx, el = f.index, ctx.effects, t - f.truth.start
    k = f.spec.kind
    if k == "dust":
        fx.dust[i] *= min(1.0 + f.params["growth_per_s"] * el, f.params["limit"])
    elif k == "fan_failure":
        # the fan winds down over a minute to what is left of it
        fx.fan_health[i] = min(fx.fan_health[i], max(f.params["residual"], 1.0 - el / 60.0))
    elif k == "degradation":
        fx.fan_health[i] = min(fx.fan_health[i], max(0.0, 1.0 - el / f.params["life_s"]))
    elif k == "disk_fill":
        fx.disk_fill_bps[i] += f.params["bps"]
    elif k == "memory_leak":
        fx.leak_bytes[i] += f.params["bps"] * (t - f.params["origin"])
    elif k == "uplink_outage":
        if f.truth.end is not None and t >= f.truth.end and ctx.runtime.uplink_down[i]:
            rtm.set_uplink(ctx.runtime, i, False, t)
    elif k == "sensor_stuck":
        fx.stuck[i, SENSOR_INDEX["cpu"]] = True
    elif k == "sensor_dropout":
        fx.dropout[i, SENSOR_INDEX["gpu"]] = True


def after_step(f: ActiveFault, ctx: FaultContext, t: float) -> None:
    """Consequences that follow the physics (OOM kill), then the ground-truth crossing check."""
    i = f.index
    if f.spec.kind == "memory_leak" and ctx.runtime.is_iotedge[i]:
        ctx.runtime.module_memory[i, rtm.WORKLOAD] += ctx.effects.leak_bytes[i]
    crossed = CROSSING[f.spec.kind](f, ctx)
    if crossed and f.truth.crossed_at is None:
        f.truth.crossed_at = t
    if f.spec.kind == "memory_leak" and crossed:
        rtm.crash_workload(ctx.runtime, i, t)  # the OOM killer ends the leaking process
        f.params["origin"] = t


def _reported_memory(f: ActiveFault, ctx: FaultContext) -> float:
    """Memory in use as the fault's first series reports it (bytes, or whole MiB)."""
    used = float(ctx.state.memory_used[f.index])
    if ctx.runtime.is_iotedge[f.index]:
        return float(np.floor(used))
    return float(np.floor(used / 2**20) * 2**20)


def _hot(f: ActiveFault, ctx: FaultContext) -> bool:
    i, p = f.index, ctx.params
    if p.is_jetson[i]:
        return bool(ctx.state.sensor_mc[i, p.throttle_col[i]] >= p.trip_mc[i])
    return bool(ctx.state.apex_mc[i, 0] >= hw.CORAL_TRIP_POINTS_MILLIC[0])


def _restarts(f: ActiveFault, ctx: FaultContext) -> bool:
    i, rt = f.index, ctx.runtime
    if rt.is_iotedge[i]:
        return bool(rt.module_start[i, rtm.WORKLOAD] - f.params["restarts0"] >= RESTARTS_LIMIT)
    return bool(rt.comp_state[i, 0] == rtm.BROKEN)


CROSSING: dict[str, Callable[[ActiveFault, FaultContext], bool]] = {
    "fan_failure": _hot,
    "dust": _hot,
    "degradation": lambda f, c: bool(c.effects.fan_health[f.index] <= 0.0),
    "disk_fill": lambda f, c: bool(
        np.floor(c.params.disk_total[f.index, 0] - c.state.disk_used[f.index, 0])
        <= DISK_FULL_RATIO * c.params.disk_total[f.index, 0]
    ),
    "memory_leak": lambda f, c: bool(
        _reported_memory(f, c) >= MEMORY_LIMIT_RATIO * c.params.memory_bytes[f.index]
    ),
    "crash_loop": _restarts,
    "failed_deployment": _restarts,
    "uplink_outage": lambda f, c: bool(c.runtime.queue[f.index] >= QUEUE_LIMIT),
    "sensor_stuck": lambda f, c: False,
    "sensor_dropout": lambda f, c: False,
}


def draw_faults(
    n: int, devices: list[Device], rng: np.random.Generator, t0: float, window_s: float
) -> list[FaultSpec]:
    """``n`` faults drawn from the seed: kinds in turn, distinct devices, starts in the window."""
    specs: list[FaultSpec] = []
    used: set[int] = set()
    order = rng.permutation(len(devices))
    for j in range(n):
        kind = FAULT_KINDS[j % len(FAULT_KINDS)]
        for idx in order:
            if int(idx) not in used and eligible(kind, devices[int(idx)]):
                used.add(int(idx))
                start = t0 + float(rng.uniform(0.02, 0.15)) * window_s
                start = round(start / 10.0) * 10.0
                severity = round(float(rng.uniform(0.5, 1.0)), 2)
                specs.append(FaultSpec(kind, devices[int(idx)].id, start, severity))
                break
    return specs
