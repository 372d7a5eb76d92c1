"""The simulator: inventory + physics + runtimes + faults, advanced one tick at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fleetwatch.simulate import faults as flt
from fleetwatch.simulate import physics, runtime
from fleetwatch.simulate.clock import Pacer
from fleetwatch.simulate.formats import edgehub, greengrass, iotedge, sysfs, tegrastats
from fleetwatch.simulate.inventory import Device, Site, build_inventory, build_sites
from fleetwatch.simulate.series import SampleBatch, SeriesTable, build_table
from fleetwatch.telemetry import Sample

DEFAULT_START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How big a fleet, from which seed, starting when, at what resolution.

    ``random_faults`` faults are drawn from the seed with starts in the first part of
    ``fault_window_s`` of simulated time.
    """

    devices: int = 50
    sites: int = 3
    seed: int = 0
    start: datetime = DEFAULT_START
    step_s: float = 10.0
    random_faults: int = 0
    fault_window_s: float = 4 * 3600.0
    runtime_restarts_per_day: float = 0.1


class Simulator:
    """A deterministic simulated fleet.

    Same config and same injected faults give the same samples, tick for tick. The public state
    (``params``, ``state``, ``runtime``) is numpy arrays indexed by ``Device.index``; formats and
    transports read it under :attr:`lock`.
    """

    def __init__(
        self, config: SimConfig | None = None, faults: Iterable[flt.FaultSpec] = ()
    ) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        self.sites: list[Site] = build_sites(cfg.sites)
        self.devices: list[Device] = build_inventory(cfg.devices, self.sites, rng)
        self._by_id = {d.id: d for d in self.devices}
        t0 = cfg.start.timestamp()
        self.params = physics.build_params(self.devices, self.sites, rng)
        self.state = physics.initial_state(self.params, t0, rng)
        self.runtime = runtime.initial_runtime(self.devices, t0, rng)
        self.effects = physics.Effects.neutral(len(self.devices))
        # Separate streams so that injecting a fault does not change the load of other devices.
        self._rng = np.random.default_rng([cfg.seed, 1])
        self._fault_rng = np.random.default_rng([cfg.seed, 2])
        self.lock = threading.RLock()
        self.ticks = 0
        self._rail_averages: dict[str, list[float]] = {}
        self._label_epoch = 0
        self.faults: list[flt.ActiveFault] = []
        self.table: SeriesTable = build_table(self)
        drawn = flt.draw_faults(
            cfg.random_faults,
            self.devices,
            np.random.default_rng([cfg.seed, 3]),
            t0,
            cfg.fault_window_s,
        )
        for spec in [*drawn, *faults]:
            self.inject(spec)

    # --- inventory ---------------------------------------------------------------------------
    def device(self, device_id: str) -> Device:
        return self._by_id[device_id]

    def inventory(self) -> list[dict[str, str]]:
        """What the state DB registers: id, site, hardware_model, accelerator, firmware, runtime,
        node_name."""
        return [d.as_dict() for d in self.devices]

    def cohorts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.devices:
            key = "/".join(d.cohort)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    # --- time --------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Simulated time, epoch seconds."""
        return self.state.t

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state.t, tz=UTC)

    @property
    def elapsed_s(self) -> float:
        return self.state.t - self.config.start.timestamp()

    # --- faults ------------------------------------------------------------------------------
    def inject(self, spec: flt.FaultSpec) -> flt.GroundTruth:
        """Schedule a fault; returns its ground-truth record (filled in as the run goes)."""
        device = self.device(spec.device)
        truth = flt.make_truth(spec, device)
        with self.lock:
            self.faults.append(flt.ActiveFault(spec, device.index, truth))
        return truth

    def ground_truth(self) -> list[flt.GroundTruth]:
        return [f.truth for f in self.faults]

    def restart_runtime(self, device_id: str) -> None:
        """Restart a device's IoT Edge runtime now (new instance_number, counters reset)."""
        with self.lock:
            runtime.restart_runtime(self.runtime, self.device(device_id).index, self.t, self._rng)

    # --- stepping ----------------------------------------------------------------------------
    def step(self, ticks: int = 1) -> None:
        """Advance the whole fleet by ``ticks`` steps of ``config.step_s`` seconds."""
        for _ in range(ticks):
            with self.lock:
                self._step_once()

    def run_for(self, seconds: float) -> None:
        """Advance ``seconds`` of simulated time as fast as possible."""
        self.step(max(1, round(seconds / self.config.step_s)))

    def run(
        self,
        *,
        speed: float | None,
        wall_seconds: float | None = None,
        sim_seconds: float | None = None,
        on_tick: Callable[[Simulator], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Run paced against the wall clock: ``speed`` simulated seconds per wall second
        (1 = real time, None = as fast as possible) until ``wall_seconds`` or ``sim_seconds``
        pass or ``stop`` is set; ``on_tick`` sees every tick. Returns the ticks run."""
        pacer = Pacer(self.config.step_s, speed)
        ticks = 0
        limit = None if sim_seconds is None else round(sim_seconds / self.config.step_s)
        while (limit is None or ticks < limit) and not (stop is not None and stop.is_set()):
            if wall_seconds is not None and pacer.wall_elapsed_s >= wall_seconds:
                break
            self.step()
            ticks += 1
            if on_tick is not None:
                on_tick(self)
            if not pacer.wait(ticks, stop):
                break
        return ticks

    def _step_once(self) -> None:
        dt = self.config.step_s
        t = self.state.t + dt
        self.effects = physics.Effects.neutral(len(self.devices))
        ctx = flt.FaultContext(
            self.devices, self.params, self.state, self.runtime, self.effects, self._fault_rng
        )
        active = [f for f in self.faults if f.truth.start <= t]
        for f in active:
            if not f.started:
                f.started = True
                flt.activate(f, ctx, t)
            flt.apply(f, ctx, t)
        physics.step(self.params, self.state, self.effects, dt, self._rng)
        runtime.step_runtime(self.runtime, self.state.cpu, t, dt)
        self._spontaneous_restarts(t, dt)
        for f in active:
            flt.after_step(f, ctx, t)
        if self.runtime.label_epoch != self._label_epoch:
            self._label_epoch = self.runtime.label_epoch
            self.table.invalidate()
        self.ticks += 1

    def _spontaneous_restarts(self, t: float, dt: float) -> None:
        rate = self.config.runtime_restarts_per_day * dt / 86400.0
        hits = np.flatnonzero(
            (self._rng.random(len(self.devices)) < rate) & self.runtime.is_iotedge
        )
        for i in hits:
            runtime.restart_runtime(self.runtime, int(i), t, self._rng)

    # --- canonical samples -------------------------------------------------------------------
    def batch(self) -> SampleBatch:
        """Canonical samples of the current tick, in columns (fast path)."""
        with self.lock:
            return self.table.evaluate()

    def value(self, name: str, labels: Mapping[str, str]) -> float | None:
        """The canonical value of one series at this tick (None when absent)."""
        with self.lock:
            return self.table.current(name, labels)

    def samples(self) -> list[Sample]:
        """Canonical samples of the current tick as :class:`Sample` objects."""
        return self.batch().samples()

    # --- real formats ------------------------------------------------------------------------
    def edge_agent_metrics(self, device_id: str) -> str:
        """edgeAgent's Prometheus text for an IoT Edge device."""
        with self.lock:
            return iotedge.edge_agent_metrics(self, self._runtime_index(device_id, "iotedge"))

    def edge_hub_metrics(self, device_id: str) -> str:
        """edgeHub's Prometheus text for an IoT Edge device."""
        with self.lock:
            return edgehub.edge_hub_metrics(self, self._runtime_index(device_id, "iotedge"))

    def fleet_status(
        self, device_id: str, trigger: str = "CADENCE", components: list[int] | None = None
    ) -> dict[str, Any]:
        """A Greengrass fleet-status message (bumps the device's sequence number)."""
        with self.lock:
            i = self._runtime_index(device_id, "greengrass")
            return greengrass.fleet_status(self, i, trigger, components)

    def nucleus_emitter(self, device_id: str) -> list[dict[str, Any]]:
        """A Greengrass nucleus-emitter publish (JSON array)."""
        with self.lock:
            return greengrass.nucleus_emitter(self, self._runtime_index(device_id, "greengrass"))

    def tegrastats_line(self, device_id: str) -> str:
        """One tegrastats line of a Jetson (rail averages run across calls)."""
        with self.lock:
            i = self.device(device_id).index
            if not self.params.is_jetson[i]:
                raise ValueError(f"{device_id} is not a Jetson")
            return tegrastats.tegrastats_line(self, i, self._rail_averages)

    def sysfs_files(self, device_id: str) -> dict[str, str]:
        """The device's sysfs files (Jetson thermal/fan/INA3221 or Coral apex), path -> text."""
        with self.lock:
            return sysfs.device_files(self, self.device(device_id).index)

    def _runtime_index(self, device_id: str, runtime_name: str) -> int:
        device = self.device(device_id)
        if device.runtime != runtime_name:
            raise ValueError(f"{device_id} runs {device.runtime}, not {runtime_name}")
        return device.index
