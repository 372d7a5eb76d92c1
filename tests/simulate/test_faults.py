"""Each fault kind leaves its signature, and its ground-truth crossing is where the series cross."""

from __future__ import annotations

import operator

import pytest

from fleetwatch.simulate import FAULT_KINDS, FaultError, FaultSpec, SimConfig, Simulator
from fleetwatch.simulate.faults import eligible

THRESHOLD_KINDS = [k for k in FAULT_KINDS if not k.startswith("sensor_")]
RELATIVE = ("module_restarts_total",)  # thresholds counted from the fault's start


def setup(kind: str, severity: float = 1.0, *, runtime: str | None = None, seed: int = 21):
    sim = Simulator(SimConfig(devices=60, sites=3, seed=seed))
    candidates = [
        d for d in sim.devices if eligible(kind, d) and (runtime is None or d.runtime == runtime)
    ]
    # the busiest candidate: a stalled fan on an idle module may never reach its trip point
    device = max(candidates, key=lambda d: sim.params.load_base[d.index])
    truth = sim.inject(FaultSpec(kind, device.id, sim.t + 600, severity))
    return sim, device, truth


def record(sim: Simulator, series: dict, ticks: int) -> list[tuple[float, float | None]]:
    out = []
    for _ in range(ticks):
        sim.step()
        out.append((sim.t, sim.value(series["name"], series["labels"])))
    return out


def first_crossing(truth, trace) -> float | None:
    compare = {">=": operator.ge, "<=": operator.le}[truth.comparison]
    base = 0.0
    if truth.series[0]["name"] in RELATIVE:
        base = next(v for t, v in reversed(trace) if t < truth.start)
    for t, v in trace:
        if t >= truth.start and v is not None and compare(v - base, truth.threshold):
            return t
    return None


@pytest.mark.parametrize(
    ("kind", "runtime", "hours"),
    [
        ("fan_failure", None, 6),
        ("dust", None, 6),
        ("degradation", None, 4),
        ("disk_fill", None, 4),
        ("memory_leak", "iotedge", 3),
        ("memory_leak", "greengrass", 3),
        ("crash_loop", "iotedge", 1),
        ("crash_loop", "greengrass", 1),
        ("failed_deployment", "iotedge", 1),
        ("failed_deployment", "greengrass", 1),
        ("uplink_outage", None, 3),
    ],
)
def test_ground_truth_crossing_matches_the_simulated_series(
    kind: str, runtime: str | None, hours: int
) -> None:
    sim, device, truth = setup(kind, runtime=runtime)
    assert truth.device == device.id and truth.threshold is not None
    trace = record(sim, truth.series[0], hours * 360)
    assert truth.crossed_at is not None, f"{kind} never crossed in {hours} h"
    assert truth.crossed_at > truth.start
    assert first_crossing(truth, trace) == truth.crossed_at
    before = [v for t, v in trace if t < truth.start]
    assert before and all(v is not None for v in before)


def test_dust_severity_sets_the_time_to_the_trip_point() -> None:
    hours = {}
    for severity in (1.0, 0.0):
        sim, _, truth = setup("dust", severity, seed=8)
        sim.step(7 * 360)
        assert truth.crossed_at is not None
        hours[severity] = (truth.crossed_at - truth.start) / 3600
    assert 0.3 < hours[1.0] < hours[0.0] < 6.0
    assert hours[0.0] > 1.5


def test_dust_on_a_coral_throttles_the_tpu_clock() -> None:
    sim = Simulator(SimConfig(devices=60, seed=21))
    coral = next(d for d in sim.devices if d.profile.kind == "coral_gateway")
    truth = sim.inject(FaultSpec("dust", coral.id, sim.t + 600, 1.0))
    clock = {"name": "coral_tpu_clock_hertz", "labels": truth.series[1]["labels"]}
    trace = record(sim, clock, 6 * 360)
    assert truth.crossed_at is not None
    assert all(v == 500e6 for t, v in trace if t < truth.crossed_at)
    assert dict(trace)[truth.crossed_at] == 250e6


def test_degradation_fails_at_its_known_time() -> None:
    sim, _device, truth = setup("degradation", 0.5)
    assert truth.expected_failure_at is not None
    sim.step(7 * 360)
    assert truth.crossed_at is not None
    step = sim.config.step_s
    assert 0 <= truth.crossed_at - truth.expected_failure_at < step


def test_sensor_stuck_freezes_one_zone_and_nothing_crosses() -> None:
    sim, _device, truth = setup("sensor_stuck")
    tj = {"name": "temperature_celsius", "labels": {**truth.series[0]["labels"], "sensor": "tj"}}
    cpu = record(sim, truth.series[0], 360)
    sim2, _, truth2 = setup("sensor_stuck")
    tjs = record(sim2, tj, 360)
    after = [v for t, v in cpu if t > truth.start]
    assert len(set(after)) == 1  # the zone reads the same value, hour after hour
    assert len({v for t, v in tjs if t > truth2.start}) > 5  # while the die keeps moving
    assert truth.crossed_at is None and truth.comparison == ""


def test_sensor_dropout_reads_minus_256_and_drops_the_sample() -> None:
    sim, device, truth = setup("sensor_dropout")
    trace = record(sim, truth.series[0], 120)
    assert all(v is not None for t, v in trace if t < truth.start)
    assert all(v is None for t, v in trace if t >= truth.start)
    files = sim.sysfs_files(device.id)
    zone = next(
        p for p, text in files.items() if p.endswith("/type") and text.lower().startswith("gpu")
    )
    assert files[zone.replace("/type", "/temp")] == "-256000\n"
    line = sim.tegrastats_line(device.id)
    assert ("GPU@-256C" in line) if device.jetpack == 5 else ("gpu@" not in line)


def test_faults_are_only_injected_where_they_can_happen() -> None:
    sim = Simulator(SimConfig(devices=40, seed=1))
    coral = next(d for d in sim.devices if d.profile.kind == "coral_gateway")
    with pytest.raises(FaultError):
        sim.inject(FaultSpec("fan_failure", coral.id, sim.t))
    with pytest.raises(FaultError):
        sim.inject(FaultSpec("no_such_fault", coral.id, sim.t))


def test_random_faults_cover_every_kind_on_distinct_devices() -> None:
    sim = Simulator(SimConfig(devices=80, seed=5, random_faults=len(FAULT_KINDS)))
    truths = sim.ground_truth()
    assert sorted(t.kind for t in truths) == sorted(FAULT_KINDS)
    assert len({t.device for t in truths}) == len(truths)
    again = Simulator(SimConfig(devices=80, seed=5, random_faults=len(FAULT_KINDS)))
    assert [t.to_dict() for t in again.ground_truth()] == [t.to_dict() for t in truths]
