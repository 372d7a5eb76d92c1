"""Vectorised device physics: one call to :func:`step` advances every device by ``dt`` seconds.

Temperatures are first-order lags toward a steady state ``ambient + R * P``: power follows load,
thermal resistance follows airflow (Jetson fan) and dust, and throttling cuts power, so a device
that loses cooling runs toward its trip point and then hovers there. Ambient follows the site's
local time of day; load follows a working-day demand curve plus an AR(1) wander per device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fleetwatch.simulate import hardware as hw
from fleetwatch.simulate.inventory import Device, Site

SENSORS = ("cpu", "gpu", "cv0", "cv1", "cv2", "soc0", "soc1", "soc2", "tj", "ao", "aux")
SENSOR_INDEX = {name: i for i, name in enumerate(SENSORS)}
TJ = SENSOR_INDEX["tj"]
MAX_APEX = 2
MAX_DISKS = 2
LOAD_TAU_S = 900.0  # how fast a device's load wanders away from the site demand


@dataclass
class FleetParams:
    """Static per-device arrays derived from the inventory."""

    n: int
    is_jetson: np.ndarray
    is_coral: np.ndarray
    site_index: np.ndarray
    utc_offset_h: np.ndarray
    ambient_c: np.ndarray
    ambient_swing_c: np.ndarray
    idle_w: np.ndarray
    cpu_w: np.ndarray
    gpu_w: np.ndarray
    r_passive: np.ndarray
    fan_gain: np.ndarray
    tau_s: np.ndarray
    fan_max_rpm: np.ndarray
    memory_bytes: np.ndarray
    load_base: np.ndarray
    gpu_share: np.ndarray
    trip_mc: np.ndarray  # first trip point of the throttle sensor (Jetson), millidegrees
    throttle_col: np.ndarray  # column in SENSORS of the throttle sensor
    has_sensor: np.ndarray  # (n, len(SENSORS))
    sensor_offsets: np.ndarray  # (len(SENSORS), 3)
    apex_mask: np.ndarray  # (n, MAX_APEX)
    disk_total: np.ndarray  # (n, MAX_DISKS), 0 where absent
    memory_base_ratio: np.ndarray


def build_params(devices: list[Device], sites: list[Site], rng: np.random.Generator) -> FleetParams:
    n = len(devices)
    site_by_name = {s.name: (i, s) for i, s in enumerate(sites)}
    profiles = [d.profile for d in devices]

    def col(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in profiles], dtype=float)

    has_sensor = np.zeros((n, len(SENSORS)), dtype=bool)
    throttle_col = np.zeros(n, dtype=np.int64)
    trip_mc = np.full(n, 1e9)
    apex_mask = np.zeros((n, MAX_APEX), dtype=bool)
    disk_total = np.zeros((n, MAX_DISKS))
    for i, (d, p) in enumerate(zip(devices, profiles, strict=True)):
        for name, _ in sensor_types(d):
            has_sensor[i, SENSOR_INDEX[name]] = True
        if p.kind == "jetson":
            throttle_col[i] = SENSOR_INDEX[p.throttle_sensor]
            trip_mc[i] = p.trip_points[0][0]
        apex_mask[i, : p.apex_count] = True
        for k, (_, size) in enumerate(p.disks[:MAX_DISKS]):
            disk_total[i, k] = size
    offsets = np.array([hw.SENSOR_OFFSETS.get(s, (0.0, 0.0, 0.0)) for s in SENSORS])
    sites_idx = np.array([site_by_name[d.site][0] for d in devices], dtype=np.int64)
    return FleetParams(
        n=n,
        is_jetson=np.array([p.kind == "jetson" for p in profiles]),
        is_coral=np.array([p.kind == "coral_gateway" for p in profiles]),
        site_index=sites_idx,
        utc_offset_h=np.array([sites[i].utc_offset_h for i in sites_idx]),
        ambient_c=np.array([sites[i].ambient_c for i in sites_idx]) + rng.normal(0, 1.0, n),
        ambient_swing_c=np.array([sites[i].ambient_swing_c for i in sites_idx]),
        idle_w=col("idle_w"),
        cpu_w=col("cpu_w"),
        gpu_w=col("gpu_w"),
        r_passive=col("r_passive") * rng.uniform(0.93, 1.07, n),
        fan_gain=col("fan_gain"),
        tau_s=col("tau_s"),
        fan_max_rpm=col("fan_max_rpm"),
        memory_bytes=col("memory_bytes"),
        load_base=rng.uniform(0.25, 0.6, n),
        gpu_share=rng.uniform(0.8, 1.4, n),
        trip_mc=trip_mc,
        throttle_col=throttle_col,
        has_sensor=has_sensor,
        sensor_offsets=offsets,
        apex_mask=apex_mask,
        disk_total=disk_total,
        memory_base_ratio=rng.uniform(0.18, 0.35, n),
    )


def sensor_types(device: Device) -> tuple[tuple[str, str], ...]:
    """(canonical name, sysfs ``type``) of each thermal zone of a Jetson, in zone order."""
    if device.hardware_model == "jetson-xavier-nx":
        return hw.XAVIER_SENSORS_JP5
    if device.profile.kind != "jetson":
        return ()
    return hw.ORIN_SENSORS_JP6 if device.jetpack == 6 else hw.ORIN_SENSORS_JP5


@dataclass
class Effects:
    """What the active faults do to the physics this step (reset before every step)."""

    dust: np.ndarray  # multiplies thermal resistance
    fan_health: np.ndarray  # 1 healthy .. 0 stalled
    leak_bytes: np.ndarray  # extra memory held by a leaking process
    disk_fill_bps: np.ndarray  # extra bytes written per second on disk 0
    stuck: np.ndarray  # (n, S) sensor frozen at its last value
    dropout: np.ndarray  # (n, S) sensor reads -256 °C

    @classmethod
    def neutral(cls, n: int) -> Effects:
        return cls(
            dust=np.ones(n),
            fan_health=np.ones(n),
            leak_bytes=np.zeros(n),
            disk_fill_bps=np.zeros(n),
            stuck=np.zeros((n, len(SENSORS)), dtype=bool),
            dropout=np.zeros((n, len(SENSORS)), dtype=bool),
        )


@dataclass
class PhysState:
    """Dynamic per-device arrays; everything a format or a canonical sample reads."""

    t: float
    ambient_c: np.ndarray
    cpu: np.ndarray
    gpu: np.ndarray
    noise: np.ndarray
    die_c: np.ndarray  # Jetson die, or the Coral gateway's enclosure air
    sensor_mc: np.ndarray  # (n, S) int millidegrees; -256000 when offline
    sensor_online: np.ndarray  # (n, S) bool
    fan_pwm: np.ndarray  # int 0..255
    fan_rpm: np.ndarray  # int
    throttled: np.ndarray
    apex_c: np.ndarray  # (n, A) true temperature
    apex_mc: np.ndarray  # (n, A) as the driver reads it back
    apex_divider: np.ndarray  # (n, A) 0..3
    apex_util: np.ndarray  # (n, A)
    power_w: np.ndarray  # device input power
    memory_used: np.ndarray
    disk_used: np.ndarray  # (n, MAX_DISKS)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def initial_state(p: FleetParams, t0: float, rng: np.random.Generator) -> PhysState:
    n = p.n
    state = PhysState(
        t=t0,
        ambient_c=p.ambient_c.copy(),
        cpu=p.load_base.copy(),
        gpu=p.load_base.copy(),
        noise=rng.normal(0, 0.08, n),
        die_c=p.ambient_c + 20.0,
        sensor_mc=np.zeros((n, len(SENSORS)), dtype=np.int64),
        sensor_online=p.has_sensor.copy(),
        fan_pwm=np.zeros(n, dtype=np.int64),
        fan_rpm=np.zeros(n, dtype=np.int64),
        throttled=np.zeros(n, dtype=bool),
        apex_c=np.repeat((p.ambient_c + 30.0)[:, None], MAX_APEX, axis=1),
        apex_mc=np.zeros((n, MAX_APEX), dtype=np.int64),
        apex_divider=np.zeros((n, MAX_APEX), dtype=np.int64),
        apex_util=np.zeros((n, MAX_APEX)),
        power_w=p.idle_w.copy(),
        memory_used=p.memory_bytes * p.memory_base_ratio,
        disk_used=p.disk_total * rng.uniform(0.2, 0.55, (n, 1)),
    )
    # Start from the steady state of the first instant so a run has no warm-up transient.
    warm = Effects.neutral(n)
    for _ in range(40):
        step(p, state, warm, 0.0, rng, settle=True)
    return state


def local_hour(p: FleetParams, t: float) -> np.ndarray:
    return (t / 3600.0 + p.utc_offset_h) % 24.0


def demand(hour: np.ndarray) -> np.ndarray:
    """Working-day demand 0..1: quiet nights, a broad peak in the early afternoon."""
    return 0.35 + 0.65 * np.exp(-(((hour - 14.0) / 4.5) ** 2))


def step(
    p: FleetParams,
    s: PhysState,
    fx: Effects,
    dt: float,
    rng: np.random.Generator,
    *,
    settle: bool = False,
) -> None:
    """Advance every device by ``dt`` seconds (``settle``: relax toward steady state in place)."""
    t = s.t + dt
    hour = local_hour(p, t)
    s.ambient_c = p.ambient_c + p.ambient_swing_c * np.sin(2 * math.pi * (hour - 9.0) / 24.0)
    if not settle:
        a = math.exp(-dt / LOAD_TAU_S)
        s.noise = a * s.noise + math.sqrt(1 - a * a) * 0.08 * rng.standard_normal(p.n)
    want = demand(hour) * p.load_base * 1.25 + s.noise
    s.cpu = np.clip(want, 0.02, 1.0)
    s.gpu = np.clip(want * p.gpu_share - 0.05, 0.0, 1.0)
    # Without dt the lag is "fully relaxed" (settling), with dt it is the exact first-order step.
    k = np.ones(p.n) * 0.5 if settle else 1.0 - np.exp(-dt / p.tau_s)
    _jetson_thermal(p, s, fx, k)
    _coral_thermal(p, s, fx, k, dt, settle)
    s.memory_used = p.memory_bytes * (p.memory_base_ratio + 0.12 * s.cpu) + fx.leak_bytes
    s.memory_used = np.minimum(s.memory_used, p.memory_bytes * 0.995)
    if not settle:
        growth = 20e6 / 3600.0 * dt  # logs and model caches: ~20 MB an hour
        s.disk_used[:, 0] += growth + fx.disk_fill_bps * dt
        s.disk_used = np.minimum(s.disk_used, p.disk_total)
        s.t = t


def _jetson_thermal(p: FleetParams, s: PhysState, fx: Effects, k: np.ndarray) -> None:
    dyn = s.cpu * p.cpu_w + s.gpu * p.gpu_w
    dyn = np.where(s.throttled, dyn * 0.5, dyn)  # passive trip: DVFS caps the clocks
    power = p.idle_w + dyn
    airflow = np.divide(s.fan_rpm, p.fan_max_rpm, out=np.zeros(p.n), where=p.fan_max_rpm > 0)
    r = p.r_passive * fx.dust / (1.0 + p.fan_gain * airflow)
    target = np.where(p.is_jetson, s.ambient_c + r * power, s.die_c)
    s.die_c = s.die_c + (target - s.die_c) * k
    off = p.sensor_offsets
    temp = s.die_c[:, None] + off[:, 0] + s.cpu[:, None] * off[:, 1] + s.gpu[:, None] * off[:, 2]
    online = p.has_sensor.copy()
    for name in hw.GATED_SENSORS:
        online[:, SENSOR_INDEX[name]] = False
    online &= ~fx.dropout
    ondie = np.where(online, temp, -np.inf)
    ondie[:, TJ] = -np.inf
    temp[:, TJ] = ondie.max(axis=1)  # TJ is the max of the on-die sensors
    temp = np.where(np.isfinite(temp), temp, -256.0)
    # Sensors step in 1/32 °C and sysfs prints whole millidegrees.
    mc = np.floor(np.floor(temp * 32.0) * 1000.0 / 32.0).astype(np.int64)
    mc = np.where(fx.stuck, s.sensor_mc, mc)
    mc = np.where(online, mc, -256000)
    s.sensor_mc = np.where(p.has_sensor, mc, 0)
    s.sensor_online = online & p.has_sensor
    hot = s.sensor_mc[np.arange(p.n), p.throttle_col]
    s.throttled = p.is_jetson & (hot >= p.trip_mc)
    curve_t = np.maximum(hot, s.sensor_mc[:, TJ]) / 1000.0
    want_pwm = np.interp(curve_t, hw.FAN_CURVE_C, hw.FAN_CURVE_PWM)
    # nvfancontrol ramps the duty cycle rather than jumping.
    pwm = s.fan_pwm + np.clip(want_pwm - s.fan_pwm, -32, 32)
    s.fan_pwm = np.where(p.is_jetson, np.round(pwm), 0).astype(np.int64)
    rpm = s.fan_pwm / 255.0 * p.fan_max_rpm * fx.fan_health
    s.fan_rpm = np.where(p.is_jetson, np.round(rpm), 0).astype(np.int64)
    s.power_w = np.where(p.is_jetson, power, s.power_w)


def _coral_thermal(
    p: FleetParams, s: PhysState, fx: Effects, k: np.ndarray, dt: float, settle: bool
) -> None:
    host_power = p.idle_w + s.cpu * p.cpu_w
    enclosure = s.ambient_c + p.r_passive * fx.dust * host_power
    s.die_c = np.where(p.is_coral, s.die_c + (enclosure - s.die_c) * k, s.die_c)
    s.apex_util = np.clip(s.cpu[:, None] * np.array([1.1, 0.9])[None, :] + 0.1, 0.0, 1.0)
    s.apex_util = np.where(p.apex_mask, s.apex_util, 0.0)
    clock = 1.0 / (2.0**s.apex_divider)  # the reduced clock reduces the heat
    apex_power = hw.APEX_IDLE_W + hw.APEX_DYNAMIC_W * s.apex_util * clock
    target = s.die_c[:, None] + hw.APEX_R_C_PER_W * fx.dust[:, None] * apex_power
    ka = 0.5 if settle else 1.0 - math.exp(-dt / hw.APEX_TAU_S)
    s.apex_c = np.where(p.apex_mask, s.apex_c + (target - s.apex_c) * ka, s.apex_c)
    s.apex_mc = coral_readback(s.apex_c * 1000.0)
    div = np.zeros_like(s.apex_divider)
    for trip in hw.CORAL_TRIP_POINTS_MILLIC:
        div += s.apex_mc >= trip  # the driver counts trip points reached: temp >= trip
    s.apex_divider = np.where(p.apex_mask, div, 0)
    s.power_w = np.where(p.is_coral, host_power + (apex_power * p.apex_mask).sum(axis=1), s.power_w)


def coral_readback(millic: np.ndarray) -> np.ndarray:
    """Temperature as the apex driver reports it: ADC steps of 250 m°C, offset 550 (…050)."""
    return (np.floor((millic - 550.0) / 250.0) * 250.0 + 550.0).astype(np.int64)
