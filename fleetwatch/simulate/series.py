"""Canonical samples, vectorised: the fast path from simulator state to fleetwatch samples.

The fleet's series are laid out once as *blocks*: one metric and label pattern over a set of
devices, with a function reading that block's values from the state arrays. A tick is then a few
hundred numpy gathers into one flat value array (:class:`SampleBatch`); :class:`Sample` objects are
built only when asked for, with label dicts built once per series and shared between ticks (treat
them as read-only).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetwatch.plugins.catalogue import COMPONENT_STATES, DEPLOYMENT_STATUSES
from fleetwatch.simulate import hardware as hw
from fleetwatch.simulate import runtime as rtm
from fleetwatch.simulate.physics import MAX_APEX, SENSOR_INDEX, SENSORS
from fleetwatch.telemetry import Sample, SeriesKey, series_key

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

MiB = 1024 * 1024
Reader = Callable[["Simulator", np.ndarray], np.ndarray]
LabelMaker = Callable[["Simulator", np.ndarray], list[dict[str, str]]]
FAN = "fan0"  # collectors number fans in hwmon order


@dataclass
class Block:
    name: str
    devices: np.ndarray  # device indices
    # shared labels, one dict per device, or a function giving them (labels that change)
    extra: dict[str, str] | list[dict[str, str]] | LabelMaker
    read: Reader
    present: Reader | None = None


@dataclass
class SampleBatch:
    """One tick of canonical samples in columns: series ``i`` is ``values[i]`` if ``present[i]``."""

    table: SeriesTable
    timestamp_ms: int
    values: np.ndarray
    present: np.ndarray

    def __len__(self) -> int:
        return int(self.present.sum())

    def samples(self) -> list[Sample]:
        labels = self.table.labels()
        mask = self.present.tolist()
        values = compress(self.values.tolist(), mask)
        names = compress(self.table.names, mask)
        return list(map(Sample, names, compress(labels, mask), values, repeat(self.timestamp_ms)))

    def value(self, name: str, labels: Mapping[str, str]) -> float | None:
        """The value of one series in this tick, or None when it is absent."""
        i = self.table.index_of(name, labels)
        if i is None or not self.present[i]:
            return None
        return float(self.values[i])

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples())

    def _present_idx(self) -> list[int]:
        return np.flatnonzero(self.present).tolist()

    def as_dict(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """{(name, sorted label pairs): value} — handy for comparing with parsed formats."""
        labels = self.table.labels()
        vals = self.values
        return {
            (self.table.names[i], tuple(sorted(labels[i].items()))): float(vals[i])
            for i in self._present_idx()
        }


class SeriesTable:
    """The fleet's series, in block order."""

    def __init__(self, sim: Simulator, blocks: list[Block]) -> None:
        self.sim = sim
        self.blocks = blocks
        self.names: list[str] = []
        self.offsets: list[int] = []  # first series index of each block
        for b in blocks:
            self.offsets.append(len(self.names))
            self.names.extend([b.name] * len(b.devices))
        self.size = len(self.names)
        self._labels: list[dict[str, str]] | None = None
        self._index: dict[SeriesKey, int] | None = None

    def invalidate(self) -> None:
        """Forget the label dicts (a label value changed, e.g. a new deployment id)."""
        self._labels = None
        self._index = None

    def index_of(self, name: str, labels: Mapping[str, str]) -> int | None:
        """Position of a series in every batch of this table (None if the fleet has no such)."""
        if self._index is None:
            self._index = {
                series_key(n, lab): i
                for i, (n, lab) in enumerate(zip(self.names, self.labels(), strict=True))
            }
        return self._index.get(series_key(name, labels))

    def labels(self) -> list[dict[str, str]]:
        if self._labels is None:
            devs = self.sim.devices
            out: list[dict[str, str]] = []
            for b in self.blocks:
                extras = b.extra(self.sim, b.devices) if callable(b.extra) else b.extra
                for j, i in enumerate(b.devices.tolist()):
                    extra = extras[j] if isinstance(extras, list) else extras
                    out.append({"device": devs[i].id, "site": devs[i].site, **extra})
            self._labels = out
        return self._labels

    def current(self, name: str, labels: Mapping[str, str]) -> float | None:
        """One series' value now, reading only its block (cheap, for tests and probes)."""
        i = self.index_of(name, labels)
        if i is None:
            return None
        k = bisect_right(self.offsets, i) - 1
        b = self.blocks[k]
        one = b.devices[i - self.offsets[k] : i - self.offsets[k] + 1]
        value = float(b.read(self.sim, one)[0])
        if math.isnan(value) or (b.present is not None and not b.present(self.sim, one)[0]):
            return None
        return value

    def evaluate(self) -> SampleBatch:
        values = np.empty(self.size)
        present = np.ones(self.size, dtype=bool)
        at = 0
        for b in self.blocks:
            n = len(b.devices)
            values[at : at + n] = b.read(self.sim, b.devices)
            if b.present is not None:
                present[at : at + n] = b.present(self.sim, b.devices)
            at += n
        present &= ~np.isnan(values)  # NaN means "no reading", never a value
        return SampleBatch(self, round(self.sim.t * 1000), values, present)


# --- readers shared with the text formats ------------------------------------------------------


def rail_milliamps(sim: Simulator, idx: np.ndarray, rail: hw.Rail) -> np.ndarray:
    """INA3221 current of one rail, whole mA, from the rail's share of the load."""
    s = sim.state
    dyn = rail.cpu_w * s.cpu[idx] + rail.gpu_w * gpu_ratio(sim, idx)
    dyn = np.where(s.throttled[idx], dyn * 0.5, dyn)
    return np.round((rail.base_w + dyn) * 1e6 / rail.millivolts)


def gpu_ratio(sim: Simulator, idx: np.ndarray) -> np.ndarray:
    """GPU load as tegrastats prints it: whole percent."""
    return np.round(sim.state.gpu[idx] * 100.0) / 100.0


def cpu_ratio(sim: Simulator, idx: np.ndarray) -> np.ndarray:
    """Device CPU load; IoT Edge reports it as a single-precision percentage."""
    cpu = sim.state.cpu[idx]
    as_float32 = (cpu * 100.0).astype(np.float32).astype(float) / 100.0
    return np.where(sim.runtime.is_iotedge[idx], as_float32, cpu)


def device_memory_used(sim: Simulator, idx: np.ndarray) -> np.ndarray:
    """Bytes (edgeAgent's host series) on IoT Edge, whole MiB (tegrastats, Greengrass) elsewhere."""
    used = sim.state.memory_used[idx]
    return np.where(sim.runtime.is_iotedge[idx], np.floor(used), np.floor(used / MiB) * MiB)


def headroom(temps_c: np.ndarray, trips_c: np.ndarray) -> np.ndarray:
    """Degrees to the lowest trip point not yet reached (NaN past the last one: no sample)."""
    reached = temps_c[:, None] >= trips_c
    nxt = np.where(reached, np.inf, trips_c).min(axis=1)
    return np.where(np.isfinite(nxt), nxt - temps_c, np.nan)


# --- the layout ---------------------------------------------------------------------------------


def build_table(sim: Simulator) -> SeriesTable:
    devs = sim.devices
    idx_of: Callable[[Callable[[Any], bool]], np.ndarray] = lambda pred: np.array(  # noqa: E731
        [d.index for d in devs if pred(d)], dtype=np.int64
    )
    blocks: list[Block] = []
    blocks += _jetson_blocks(sim, idx_of)
    blocks += _coral_blocks(sim, idx_of)
    blocks += _iotedge_blocks(sim, idx_of(lambda d: d.runtime == "iotedge"))
    blocks += _greengrass_blocks(sim, idx_of(lambda d: d.runtime == "greengrass"))
    everyone = np.arange(len(devs), dtype=np.int64)
    blocks.append(Block("cpu_utilization_ratio", everyone, {}, cpu_ratio))
    return SeriesTable(sim, [b for b in blocks if len(b.devices)])


def _sensor_reader(col: int) -> tuple[Reader, Reader]:
    def read(sim: Simulator, idx: np.ndarray) -> np.ndarray:
        return sim.state.sensor_mc[idx, col] / 1000.0

    def online(sim: Simulator, idx: np.ndarray) -> np.ndarray:
        return sim.state.sensor_online[idx, col]

    return read, online


def _jetson_blocks(sim: Simulator, idx_of: Callable[..., np.ndarray]) -> list[Block]:
    p = sim.params
    blocks: list[Block] = []
    for name in SENSORS:
        col = SENSOR_INDEX[name]
        idx = np.flatnonzero(p.has_sensor[:, col])
        read, online = _sensor_reader(col)
        blocks.append(Block("temperature_celsius", idx, {"sensor": name}, read, online))
        blocks.append(
            Block(
                "temperature_sensor_up",
                idx,
                {"sensor": name},
                lambda s, i, c=col: s.state.sensor_online[i, c].astype(float),
            )
        )
    for model, prof in hw.PROFILES.items():
        if prof.kind != "jetson":
            continue
        idx = idx_of(lambda d, m=model: d.hardware_model == m)
        col = SENSOR_INDEX[prof.throttle_sensor]
        trips_c = np.array([mc / 1000.0 for mc, _ in prof.trip_points])
        for k, (mc, typ) in enumerate(prof.trip_points):
            lab = {"sensor": prof.throttle_sensor, "trip": str(k), "type": typ}
            blocks.append(
                Block(
                    "thermal_trip_point_celsius",
                    idx,
                    lab,
                    lambda s, i, v=mc: np.full(len(i), v / 1000.0),
                )
            )
        blocks.append(
            Block(
                "thermal_headroom_celsius",
                idx,
                {"sensor": prof.throttle_sensor},
                lambda s, i, c=col, tr=trips_c: headroom(s.state.sensor_mc[i, c] / 1000.0, tr),
            )
        )
        for rail in prof.rails:
            blocks.append(
                Block(
                    "power_watts",
                    idx,
                    {"rail": rail.name},
                    lambda s, i, r=rail: r.millivolts * rail_milliamps(s, i, r) / 1e6,
                )
            )
    jet = np.flatnonzero(p.is_jetson)
    blocks += [
        Block("fan_speed_rpm", jet, {"fan": FAN}, lambda s, i: s.state.fan_rpm[i].astype(float)),
        Block("fan_pwm_ratio", jet, {"fan": FAN}, lambda s, i: s.state.fan_pwm[i] / 255.0),
        Block("gpu_utilization_ratio", jet, {}, gpu_ratio),
    ]
    total = np.flatnonzero(p.is_jetson | sim.runtime.is_iotedge)
    blocks.append(Block("memory_total_bytes", total, {}, lambda s, i: s.params.memory_bytes[i]))
    blocks.append(Block("memory_used_bytes", np.arange(p.n), {}, device_memory_used))
    return blocks


def _coral_blocks(sim: Simulator, idx_of: Callable[..., np.ndarray]) -> list[Block]:
    p = sim.params
    trips_c = np.array(hw.CORAL_TRIP_POINTS_MILLIC) / 1000.0
    # headroom counts the enabled shutdown alarm as the last trip point
    limits_c = np.array([*hw.CORAL_TRIP_POINTS_MILLIC, hw.CORAL_SHUTDOWN_MILLIC]) / 1000.0
    blocks: list[Block] = []
    for a in range(MAX_APEX):
        idx = np.flatnonzero(p.apex_mask[:, a])
        sensor = f"apex_{a}"
        blocks.append(
            Block(
                "temperature_celsius",
                idx,
                {"sensor": sensor},
                lambda s, i, a=a: s.state.apex_mc[i, a] / 1000.0,
            )
        )
        # the chip's shutdown alarm (hw_temp_warn2, enabled in the driver) is a trip point too
        warn = {"sensor": sensor, "trip": "hw_temp_warn2", "type": "shutdown"}
        blocks.append(
            Block(
                "thermal_trip_point_celsius",
                idx,
                warn,
                lambda s, i: np.full(len(i), hw.CORAL_SHUTDOWN_MILLIC / 1000.0),
            )
        )
        for k in range(3):
            lab = {"sensor": sensor, "trip": str(k), "type": "throttle"}
            blocks.append(
                Block(
                    "thermal_trip_point_celsius",
                    idx,
                    lab,
                    lambda s, i, v=trips_c[k]: np.full(len(i), v),
                )
            )
        blocks.append(
            Block(
                "coral_tpu_clock_hertz",
                idx,
                {"sensor": sensor},
                lambda s, i, a=a: np.array(hw.CORAL_CLOCKS_HZ)[s.state.apex_divider[i, a]],
            )
        )
        blocks.append(
            Block(
                "thermal_headroom_celsius",
                idx,
                {"sensor": sensor},
                lambda s, i, a=a: headroom(s.state.apex_mc[i, a] / 1000.0, limits_c),
            )
        )
    return blocks


def _iotedge_blocks(sim: Simulator, idx: np.ndarray) -> list[Block]:
    blocks: list[Block] = []
    for m, module in enumerate(rtm.IOTEDGE_MODULES):
        lab = {"module": module}
        blocks += [
            Block(
                "memory_used_bytes",
                idx,
                lab,
                lambda s, i, m=m: np.floor(s.runtime.module_memory[i, m]),
            ),
            Block("memory_total_bytes", idx, lab, lambda s, i: s.params.memory_bytes[i]),
            Block(
                "network_receive_bytes_total",
                idx,
                lab,
                lambda s, i, m=m: np.floor(s.runtime.net_in[i, m]),
            ),
            Block(
                "network_transmit_bytes_total",
                idx,
                lab,
                lambda s, i, m=m: np.floor(s.runtime.net_out[i, m]),
            ),
            Block("module_availability_ratio", idx, lab, lambda s, i, m=m: availability(s, i, m)),
            Block("cpu_utilization_ratio", idx, lab, lambda s, i, m=m: module_cpu(s, i, m)),
        ]
        if m in rtm.STARTED_MODULES:
            blocks.append(
                Block(
                    "module_restarts_total",
                    idx,
                    lab,
                    lambda s, i, m=m: s.runtime.module_start[i, m],
                )
            )
    blocks += [
        Block("deployment_duration_seconds", idx, {}, lambda s, i: np.full(len(i), 4.7719382 / 2)),
        Block(
            "message_queue_length",
            idx,
            {"endpoint": "iothub", "priority": "2000000000"},
            lambda s, i: s.runtime.queue[i],
        ),
        Block(
            "message_queue_length",
            idx,
            [
                {
                    "endpoint": f"{sim.devices[i].id}/telemetryForwarder/input1",
                    "priority": "2000000000",
                }
                for i in idx.tolist()
            ],
            lambda s, i: np.zeros(len(i)),
        ),
        Block("uplink_offline_total", idx, {}, lambda s, i: s.runtime.offline_count[i]),
    ]
    for k in range(2):
        sub = idx[sim.params.disk_total[idx, k] > 0]
        labs = [{"disk": sim.devices[i].profile.disks[k][0]} for i in sub.tolist()]
        blocks += [
            Block("disk_free_bytes", sub, labs, lambda s, i, k=k: disk_free(s, i, k)),
            Block("disk_total_bytes", sub, labs, lambda s, i, k=k: s.params.disk_total[i, k]),
        ]
    return blocks


def module_cpu(sim: Simulator, idx: np.ndarray, m: int) -> np.ndarray:
    """A module's share of the CPU, as edgeAgent's median (single precision percent) / 100."""
    running = sim.runtime.down_until[idx, m] <= sim.t
    percent = sim.state.cpu[idx] * 100.0 * rtm.CPU_SHARE[m] * running
    return percent.astype(np.float32).astype(float) / 100.0


def availability(sim: Simulator, idx: np.ndarray, m: int) -> np.ndarray:
    rt = sim.runtime
    exp = rt.expected_s[idx, m]
    return np.divide(rt.running_s[idx, m], exp, out=np.ones(len(idx)), where=exp > 0)


def disk_free(sim: Simulator, idx: np.ndarray, k: int) -> np.ndarray:
    return np.floor(sim.params.disk_total[idx, k] - sim.state.disk_used[idx, k])


def _greengrass_blocks(sim: Simulator, idx: np.ndarray) -> list[Block]:
    blocks: list[Block] = []
    for c, (component, *_rest) in enumerate(rtm.GG_COMPONENTS):
        for si, state in enumerate(COMPONENT_STATES):
            blocks.append(
                Block(
                    "component_state",
                    idx,
                    {"component": component, "state": state},
                    lambda s, i, c=c, si=si: (s.runtime.comp_state[i, c] == si).astype(float),
                )
            )
    blocks.append(
        Block(
            "device_healthy", idx, {}, lambda s, i: rtm.device_healthy(s.runtime)[i].astype(float)
        )
    )
    for status in DEPLOYMENT_STATUSES:
        blocks.append(
            Block(
                "deployment_status",
                idx,
                lambda s, i, st=status: [
                    {"deployment": s.runtime.deployment_id[j], "status": st} for j in i.tolist()
                ],
                lambda s, i, st=status: np.array(
                    [rtm.DEPLOYMENT_STATUSES[k] == st for k in s.runtime.deployment_status[i]],
                    dtype=float,
                ),
            )
        )
    for si, state in enumerate(COMPONENT_STATES):
        blocks.append(
            Block(
                "component_count",
                idx,
                {"state": state},
                lambda s, i, si=si: (s.runtime.comp_state[i] == si).sum(axis=1).astype(float),
            )
        )
    return blocks
