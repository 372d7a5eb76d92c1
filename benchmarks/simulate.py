"""How fast the simulator makes telemetry: canonical samples and the real text formats.

``fleetwatch bench simulate [--devices N] [--seconds S]``. The canonical path is what other
benchmarks feed on, so it must not be their bottleneck: it reports device-seconds of telemetry
per wall second (devices x simulated seconds advanced / wall seconds) and samples per second,
both for the columnar batch and for materialised ``Sample`` objects.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import emit
from fleetwatch.simulate import SimConfig, Simulator

CPU = {"seconds": 0.0}  # process CPU time of the last timed phase (the machine may be shared)


def _timed(budget_s: float, work: Callable[[], int]) -> tuple[int, int, float]:
    """Run ``work`` until ``budget_s`` passes: (calls, units it reported, wall seconds)."""
    calls = units = 0
    started, cpu = time.perf_counter(), time.process_time()
    while True:
        units += work()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= budget_s:
            CPU["seconds"] = time.process_time() - cpu
            return calls, units, elapsed


def canonical(sim: Simulator, budget_s: float) -> dict[str, Any]:
    def tick() -> int:
        sim.step()
        return len(sim.batch())

    ticks, samples, elapsed = _timed(budget_s, tick)
    n = len(sim.devices)
    return {
        "ticks": ticks,
        "series": sim.table.size,
        "samples_per_tick": round(samples / ticks),
        "device_seconds_per_wall_second": round(n * sim.config.step_s * ticks / elapsed),
        "samples_per_second": round(samples / elapsed),
        # per CPU second: what the figures would be with a core to itself
        "device_seconds_per_cpu_second": round(n * sim.config.step_s * ticks / CPU["seconds"]),
        "samples_per_cpu_second": round(samples / CPU["seconds"]),
    }


def objects(sim: Simulator, budget_s: float) -> dict[str, Any]:
    sim.batch().samples()  # label dicts are built once per series; not part of the rate

    def tick() -> int:
        sim.step()
        return len(sim.batch().samples())

    _, samples, elapsed = _timed(budget_s, tick)
    return {
        "sample_objects_per_second": round(samples / elapsed),
        "sample_objects_per_cpu_second": round(samples / CPU["seconds"]),
    }


def formats(sim: Simulator, budget_s: float) -> dict[str, Any]:
    iotedge = [d.id for d in sim.devices if d.runtime == "iotedge"]
    greengrass = [d.id for d in sim.devices if d.runtime == "greengrass"]
    jetsons = [d.id for d in sim.devices if d.profile.kind == "jetson"]
    everyone = [d.id for d in sim.devices]
    cursor = {"i": 0}

    def take(ids: list[str]) -> str:
        cursor["i"] += 1
        return ids[cursor["i"] % len(ids)]

    def scrape() -> int:
        device = take(iotedge)
        return len(sim.edge_agent_metrics(device)) + len(sim.edge_hub_metrics(device))

    def status() -> int:
        device = take(greengrass)
        return len(json.dumps(sim.fleet_status(device))) + len(
            json.dumps(sim.nucleus_emitter(device))
        )

    out: dict[str, Any] = {}
    for key, work in (
        ("iotedge_scrapes", scrape),
        ("greengrass_messages", status),
        ("tegrastats_lines", lambda: len(sim.tegrastats_line(take(jetsons)))),
        ("sysfs_trees", lambda: len(sim.sysfs_files(take(everyone)))),
    ):
        calls, size, elapsed = _timed(budget_s, work)
        out[f"{key}_per_second"] = round(calls / elapsed)
        out[f"{key}_bytes_per_second" if key != "sysfs_trees" else "sysfs_files_per_second"] = (
            round(size / elapsed)
        )
    return out


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench simulate")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="budget per phase")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args)
    started = time.perf_counter()
    sim = Simulator(
        SimConfig(devices=opts.devices, sites=6, seed=opts.seed, random_faults=opts.devices // 200)
    )
    build_s = time.perf_counter() - started
    print(f"built {opts.devices} devices in {build_s:.1f}s; canonical samples...", flush=True)
    result: dict[str, Any] = {
        "benchmark": "simulate",
        "devices": opts.devices,
        "step_s": sim.config.step_s,
        "build_seconds": round(build_s, 2),
    }
    result.update(canonical(sim, opts.seconds))
    print(
        f"  {result['device_seconds_per_wall_second']:,} device-s/s; Sample objects...", flush=True
    )
    result.update(objects(sim, opts.seconds))
    print(f"  {result['sample_objects_per_second']:,} Sample/s; text formats...", flush=True)
    result["formats"] = formats(sim, opts.seconds / 3)
    return emit(result)
