"""Physics sanity: thermal lag, Coral DVFS at its trip points, fans, counters, diurnal ambient."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetwatch.simulate import FaultSpec, SimConfig, Simulator
from fleetwatch.simulate import hardware as hw
from fleetwatch.simulate.physics import SENSOR_INDEX, local_hour


def jetson(sim: Simulator) -> int:
    return next(d.index for d in sim.devices if d.hardware_model == "jetson-agx-orin")


def test_temperature_follows_a_load_step_with_first_order_lag() -> None:
    sim = Simulator(SimConfig(devices=30, seed=2))
    i = jetson(sim)
    sim.step(30)
    before = sim.state.die_c[i]
    sim.params.load_base[i] = 1.0  # the workload on this device doubles, stays there
    sim.step(1)
    power_after = sim.state.power_w[i]
    temps = []
    for _ in range(200):  # 2000 s, several time constants
        temps.append(sim.state.die_c[i])
        sim.step(1)
    temps = np.array(temps)
    rise = temps[90] - before  # ~3 time constants later
    assert power_after > sim.params.idle_w[i] + 10  # power follows load at once
    assert rise > 4.0
    # one 10 s tick covers only a small part of the way: thermal inertia (tau = 300 s) ...
    assert temps[0] - before < 0.2 * rise
    steps = np.diff(temps[:12])
    assert (steps > 0).all() and (np.diff(steps) < 0.02).all()  # a concave, exponential approach
    # ... and after one time constant most of it is done (first order: 63 %)
    assert temps[30] - before > 0.5 * rise


def test_coral_clock_steps_down_at_the_driver_trip_points() -> None:
    sim = Simulator(SimConfig(devices=40, seed=4))
    coral = next(d for d in sim.devices if d.profile.kind == "coral_gateway")
    sim.inject(FaultSpec("dust", coral.id, sim.t, severity=1.0))
    seen: set[float] = set()
    labels = {"device": coral.id, "site": coral.site, "sensor": "apex_0"}
    for _ in range(6 * 360):
        sim.step()
        temp = sim.value("temperature_celsius", labels)
        clock = sim.value("coral_tpu_clock_hertz", labels)
        assert temp is not None and clock is not None
        millic = round(temp * 1000)
        assert millic % 250 == 50  # ADC steps read back by the driver
        steps = sum(millic >= t for t in hw.CORAL_TRIP_POINTS_MILLIC)
        assert clock == (500e6, 250e6, 125e6, 62.5e6)[steps]
        seen.add(clock)
    assert {500e6, 250e6} <= seen


def test_the_reduced_clock_reduces_heat(monkeypatch: pytest.MonkeyPatch) -> None:
    def hottest(trips: tuple[int, ...]) -> float:
        monkeypatch.setattr(hw, "CORAL_TRIP_POINTS_MILLIC", trips)
        sim = Simulator(SimConfig(devices=40, seed=4))
        coral = next(d for d in sim.devices if d.profile.kind == "coral_gateway")
        sim.inject(FaultSpec("dust", coral.id, sim.t, severity=1.0))
        sim.step(5 * 360)
        return float(sim.state.apex_c[coral.index, 0])

    throttling = hottest((84800, 89800, 94800))
    never = hottest((10**9, 10**9, 10**9))
    assert never > throttling + 3


def test_fan_pwm_rises_with_temperature_and_rpm_follows_pwm() -> None:
    sim = Simulator(SimConfig(devices=30, seed=2))
    i = jetson(sim)
    sim.inject(FaultSpec("dust", sim.devices[i].id, sim.t, severity=1.0))
    temps, pwms, rpms = [], [], []
    for _ in range(360):
        sim.step()
        temps.append(sim.state.sensor_mc[i, SENSOR_INDEX["tj"]])
        pwms.append(sim.state.fan_pwm[i])
        rpms.append(sim.state.fan_rpm[i])
    assert pwms[-1] > pwms[0] and temps[-1] > temps[0]
    assert np.corrcoef(temps, pwms)[0, 1] > 0.8
    expected = np.round(np.array(pwms) / 255 * sim.params.fan_max_rpm[i])
    assert np.array_equal(np.array(rpms), expected)  # healthy fan: tach follows the duty cycle


def counters(text: str) -> tuple[str, dict[tuple[str, str], float]]:
    out = {}
    instance = ""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            instance = s.labels["instance_number"]
            if family.name in ("edgeAgent_total_network_in_bytes", "edgeAgent_module_start"):
                out[(s.name, s.labels["module_name"])] = s.value
    return instance, out


def test_iotedge_counters_only_grow_and_reset_on_a_new_instance_number() -> None:
    sim = Simulator(SimConfig(devices=30, seed=9))
    device = next(d for d in sim.devices if d.runtime == "iotedge")
    sim.inject(FaultSpec("crash_loop", device.id, sim.t + 30, severity=1.0))
    instance0, previous = counters(sim.edge_agent_metrics(device.id))
    for _ in range(60):
        sim.step()
        instance, now = counters(sim.edge_agent_metrics(device.id))
        assert instance == instance0
        assert all(now[k] >= previous[k] for k in previous)
        previous = now
    assert previous[("edgeAgent_module_start_total", "objectDetector")] > 1
    sim.restart_runtime(device.id)
    sim.step()
    instance, after = counters(sim.edge_agent_metrics(device.id))
    assert instance != instance0
    assert len(instance) == 36 and instance.count("-") == 4  # a GUID
    assert after[("edgeAgent_module_start_total", "objectDetector")] == 1
    net = ("edgeAgent_total_network_in_bytes", "edgeHub")
    assert after[net] < previous[net]


def test_ambient_follows_the_site_clock() -> None:
    sim = Simulator(SimConfig(devices=30, sites=3, seed=1, step_s=600.0))
    by_hour: dict[int, list[float]] = {}
    for _ in range(24 * 6):
        sim.step()  # 10 min
        hours = local_hour(sim.params, sim.t)
        i = 0
        by_hour.setdefault(int(hours[i]), []).append(float(sim.state.ambient_c[i]))
    assert np.mean(by_hour[15]) > np.mean(by_hour[3]) + 1.0
