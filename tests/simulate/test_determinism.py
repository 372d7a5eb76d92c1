"""Same seed, same fleet, same samples; faults do not disturb the rest of the fleet."""

from __future__ import annotations

import numpy as np

from fleetwatch.simulate import FaultSpec, SimConfig, Simulator


def run(seed: int, ticks: int, faults: list[FaultSpec] | None = None) -> list[np.ndarray]:
    sim = Simulator(SimConfig(devices=40, sites=3, seed=seed, random_faults=5), faults or [])
    out = []
    for _ in range(ticks):
        sim.step()
        out.append(sim.batch().values.copy())
    return out


def test_same_seed_gives_identical_samples() -> None:
    a = Simulator(SimConfig(devices=40, seed=3, random_faults=5))
    b = Simulator(SimConfig(devices=40, seed=3, random_faults=5))
    assert a.inventory() == b.inventory()
    for _ in range(30):
        a.step()
        b.step()
    assert a.samples() == b.samples()
    assert [t.to_dict() for t in a.ground_truth()] == [t.to_dict() for t in b.ground_truth()]
    assert a.edge_agent_metrics(_iotedge(a)) == b.edge_agent_metrics(_iotedge(b))


def test_different_seed_gives_a_different_fleet() -> None:
    a, b = run(1, 5), run(2, 5)
    assert not np.array_equal(
        a[-1][: min(len(a[-1]), len(b[-1]))], b[-1][: min(len(a[-1]), len(b[-1]))]
    )


def test_injecting_a_fault_leaves_other_devices_unchanged() -> None:
    plain = Simulator(SimConfig(devices=40, seed=5))
    target = next(d for d in plain.devices if d.profile.kind == "jetson")
    faulty = Simulator(
        SimConfig(devices=40, seed=5), [FaultSpec("dust", target.id, plain.t + 60, 1.0)]
    )
    for _ in range(200):
        plain.step()
        faulty.step()
    p, f = plain.batch().as_dict(), faulty.batch().as_dict()
    others = [k for k in p if dict(k[1])["device"] != target.id]
    assert others and all(p[k] == f[k] for k in others)
    mine = [k for k in p if dict(k[1])["device"] == target.id and k[0] == "temperature_celsius"]
    assert any(p[k] != f[k] for k in mine)


def _iotedge(sim: Simulator) -> str:
    return next(d.id for d in sim.devices if d.runtime == "iotedge")


def test_run_paces_simulated_time_against_the_wall_clock() -> None:
    import time

    sim = Simulator(SimConfig(devices=10, seed=1, step_s=10.0))
    seen: list[float] = []
    started = time.monotonic()
    ticks = sim.run(speed=100.0, sim_seconds=50.0, on_tick=lambda s: seen.append(s.t))
    elapsed = time.monotonic() - started
    assert ticks == 5 and len(seen) == 5 and seen == sorted(seen)
    assert elapsed >= 0.4  # 5 ticks of 10 s at x100: the last one is due after 0.5 s
    fast = Simulator(SimConfig(devices=10, seed=1, step_s=10.0))
    assert fast.run(speed=None, sim_seconds=50.0) == 5
    assert fast.samples() == sim.samples()
