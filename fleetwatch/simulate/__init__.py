"""Simulated fleet of edge AI devices: deterministic, physical, fast, in the real formats.

Typical use::

    from fleetwatch.simulate import FaultSpec, SimConfig, Simulator

    sim = Simulator(SimConfig(devices=200, sites=3, seed=7, random_faults=5))
    sim.inject(FaultSpec("dust", sim.devices[0].id, start=sim.t + 600, severity=0.8))
    sim.step(360)                       # one hour at 10 s per tick
    batch = sim.batch()                 # canonical samples of this tick, columnar
    samples = batch.samples()           # ... as fleetwatch.telemetry.Sample objects
    truth = sim.ground_truth()          # per fault: start, threshold, crossed_at, series

Real formats: ``sim.edge_agent_metrics(id)``, ``sim.edge_hub_metrics(id)``,
``sim.fleet_status(id)``, ``sim.nucleus_emitter(id)``, ``sim.tegrastats_line(id)``,
``sim.sysfs_files(id)``; transports in :mod:`fleetwatch.simulate.transports`.
"""

from fleetwatch.simulate.clock import Pacer
from fleetwatch.simulate.engine import SimConfig, Simulator
from fleetwatch.simulate.faults import FAULT_KINDS, FaultError, FaultSpec, GroundTruth
from fleetwatch.simulate.inventory import Device, Site
from fleetwatch.simulate.series import SampleBatch

__all__ = [
    "FAULT_KINDS",
    "Device",
    "FaultError",
    "FaultSpec",
    "GroundTruth",
    "Pacer",
    "SampleBatch",
    "SimConfig",
    "Simulator",
    "Site",
]
