"""The simulator's formats match the real-format fixtures, and parse back to the canonical samples.

Structure is checked against tests/fixtures (family names, types, label order, JSON keys, file
names); values are checked by parsing the output with the collectors' own parsers and comparing
with the simulator's canonical samples of the same tick.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetwatch.simulate import FaultSpec, SimConfig, Simulator
from fleetwatch.simulate.formats.iotedge import dotnet_number
from fleetwatch.simulate.transports import SysfsMirror
from fleetwatch.telemetry import Sample
from tests.simulate.conftest import FIXTURES

MiB = 1024 * 1024
IOTEDGE_NAMES = {
    "memory_used_bytes", "memory_total_bytes", "disk_free_bytes", "disk_total_bytes",
    "network_receive_bytes_total", "network_transmit_bytes_total", "module_restarts_total",
    "module_availability_ratio", "message_queue_length", "uplink_offline_total",
    "cpu_utilization_ratio", "deployment_duration_seconds",
}  # fmt: skip
CORAL_NAMES = {
    "temperature_celsius", "thermal_trip_point_celsius", "coral_tpu_clock_hertz",
    "thermal_headroom_celsius",
}  # fmt: skip
JETSON_NAMES = CORAL_NAMES - {"coral_tpu_clock_hertz"} | {
    "temperature_sensor_up", "fan_speed_rpm", "fan_pwm_ratio", "power_watts",
}  # fmt: skip


@pytest.fixture(scope="module")
def fleet() -> Simulator:
    sim = Simulator(SimConfig(devices=80, sites=3, seed=13))
    coral = next(d for d in sim.devices if d.profile.apex_count == 2)
    sim.inject(FaultSpec("dust", coral.id, sim.t, 1.0))  # one apex past trip 0 at the end
    sim.step(360 * 3)
    return sim


def pick(sim: Simulator, **attrs: object):
    return next(d for d in sim.devices if all(getattr(d, k) == v for k, v in attrs.items()))


def agree(sim: Simulator, collected: list[Sample], names: set[str], device: str) -> int:
    """Every collected sample of ``names`` equals the canonical one; the reverse holds too."""
    batch = sim.batch()
    seen = set()
    for s in collected:
        if s.name not in names:
            continue
        expected = batch.value(s.name, s.labels)
        assert expected is not None, f"simulator has no {s.describe()}"
        assert expected == pytest.approx(s.value, rel=1e-6, abs=1e-9), s.describe()
        seen.add(s.series)
    mine = {s.series for s in batch.samples() if s.name in names and s.labels["device"] == device}
    assert mine <= seen, f"not found by the collector: {sorted(mine - seen)[:5]}"
    return len(seen)


# --- IoT Edge ------------------------------------------------------------------------------------


def test_dotnet_number_formatting() -> None:
    assert dotnet_number(9.41e-05) == "9.41E-05"
    assert dotnet_number(48.0) == "48"
    assert dotnet_number(86721.4417022) == "86721.4417022"
    assert dotnet_number(float("nan")) == "NaN"
    assert dotnet_number(1e16) == "1E+16"
    assert dotnet_number(0.0001) == "0.0001"


def families(text: str) -> dict[str, tuple[str, set[tuple[str, ...]]]]:
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = (fam.type, {tuple(sorted(s.labels)) for s in fam.samples})
    return out


def label_order(text: str) -> dict[str, list[str]]:
    """Label names in order of the first sample line of each metric name."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"([a-zA-Z_:][\w:]*)\{(.*)\} ", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = re.findall(
                r'([a-zA-Z_]\w*)="', m.group(2).split(",host_information")[0]
            )
    return out


@pytest.mark.parametrize(
    ("fixture", "render"),
    [
        ("iotedge_edgeagent_metrics.txt", Simulator.edge_agent_metrics),
        ("iotedge_edgehub_metrics.txt", Simulator.edge_hub_metrics),
    ],
)
def test_iotedge_text_has_the_fixture_families_types_and_labels(fleet, fixture, render) -> None:
    device = pick(fleet, runtime="iotedge")
    text = render(fleet, device.id)
    real = (FIXTURES / fixture).read_text()
    mine, theirs = families(text), families(real)
    assert set(mine) == set(theirs)
    for name, (kind, label_sets) in theirs.items():
        assert mine[name][0] == kind, name
        assert mine[name][1] == label_sets, name
    assert label_order(text) == label_order(real)
    quantiles = {s.labels["quantile"] for f in text_string_to_metric_families(text)
                 for s in f.samples if "quantile" in s.labels}  # fmt: skip
    assert quantiles == {"0.5", "0.9", "0.95", "0.99", "0.999", "0.9999"}
    assert text.endswith("\n")


def test_iotedge_text_values_are_the_simulator_state(fleet) -> None:
    device = pick(fleet, runtime="iotedge")
    values = {}
    for fam in text_string_to_metric_families(fleet.edge_agent_metrics(device.id)):
        for s in fam.samples:
            values[(s.name, s.labels.get("module_name", s.labels.get("disk_name")))] = s.value
    batch = fleet.batch()
    base = {"device": device.id, "site": device.site}
    assert values[("edgeAgent_used_memory_bytes", "host")] == batch.value("memory_used_bytes", base)
    disk = device.profile.disks[0][0]
    assert values[("edgeAgent_available_disk_space_bytes", disk)] == batch.value(
        "disk_free_bytes", {**base, "disk": disk}
    )
    restarts = batch.value("module_restarts_total", {**base, "module": "objectDetector"})
    assert values[("edgeAgent_module_start_total", "objectDetector")] == restarts


def test_iotedge_collector_parses_the_canonical_samples(fleet) -> None:
    parse = importlib.import_module("collectors.iotedge.parse")
    for device in [d for d in fleet.devices if d.runtime == "iotedge"][:6]:
        collected = []
        for text in (fleet.edge_agent_metrics(device.id), fleet.edge_hub_metrics(device.id)):
            result = parse.parse_exposition(
                text, site=device.site, timestamp_ms=fleet.batch().timestamp_ms
            )
            assert not result.errors
            collected += result.samples
        assert agree(fleet, collected, IOTEDGE_NAMES, device.id) > 30


# --- Greengrass ----------------------------------------------------------------------------------


def test_fleet_status_and_emitter_follow_the_fixture_shapes(fleet) -> None:
    device = pick(fleet, runtime="greengrass")
    message = fleet.fleet_status(device.id)
    real = json.loads((FIXTURES / "greengrass_fleet_status.json").read_text())
    assert list(message) == list(real)
    assert list(message["components"][0]) == list(real["components"][0])
    assert message["messageType"] == "COMPLETE" and message["trigger"] == "CADENCE"
    assert message["timestamp"] == round(fleet.t * 1000)
    emitted = fleet.nucleus_emitter(device.id)
    real_emit = json.loads((FIXTURES / "greengrass_nucleus_emitter.json").read_text())
    assert [m["N"] for m in emitted] == [m["N"] for m in real_emit]
    assert all(list(m) == list(real_emit[0]) for m in emitted)
    cpu = next(m["V"] for m in emitted if m["N"] == "CpuUsage")
    assert cpu / 100 == pytest.approx(fleet.state.cpu[device.index])


def test_a_broken_component_makes_the_device_unhealthy() -> None:
    sim = Simulator(SimConfig(devices=40, seed=3))
    device = pick(sim, runtime="greengrass")
    sim.inject(FaultSpec("failed_deployment", device.id, sim.t, 1.0))
    assert sim.fleet_status(device.id)["overallDeviceStatus"] == "HEALTHY"
    sim.step(60)
    message = sim.fleet_status(device.id, "THING_GROUP_DEPLOYMENT", [0])
    assert message["overallDeviceStatus"] == "UNHEALTHY"
    assert message["messageType"] == "PARTIAL" and len(message["components"]) == 1
    assert message["components"][0]["status"] == "BROKEN"
    assert message["components"][0]["componentStatusDetails"]["statusCodes"] == ["RUN_ERROR"]
    assert message["deploymentInformation"]["status"] == "FAILED"


def test_greengrass_collector_parses_the_canonical_samples() -> None:
    parse = importlib.import_module("collectors.greengrass.parse")
    sim = Simulator(SimConfig(devices=40, seed=3))
    device = pick(sim, runtime="greengrass")
    sim.inject(FaultSpec("failed_deployment", device.id, sim.t, 1.0))
    sim.step(60)
    status = parse.parse_fleet_status(
        sim.fleet_status(device.id, "THING_GROUP_DEPLOYMENT"), site=device.site
    )
    emitted = parse.parse_emitter(
        sim.nucleus_emitter(device.id), device=device.id, site=device.site
    )
    assert not status.errors and not emitted.errors
    names = {"device_healthy", "component_state", "deployment_status", "cpu_utilization_ratio"}
    names |= {"memory_used_bytes"}
    assert agree(sim, status.samples + emitted.samples, names, device.id) > 40
    assert {s.timestamp_ms for s in status.samples} == {sim.batch().timestamp_ms}


# --- sysfs and tegrastats ------------------------------------------------------------------------


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_coral_sysfs_matches_the_fixture_and_the_driver_quantisation(fleet, tmp_path) -> None:
    mirror = SysfsMirror(fleet, tmp_path)
    mirror.write_tick()
    device = next(d for d in fleet.devices if d.profile.apex_count == 2)
    root = mirror.device_root(device.id)
    assert tree(root / "class/apex/apex_0") == tree(FIXTURES / "coral_sysfs/class/apex/apex_0")
    assert not list(root.rglob(".*.tmp"))  # atomic writes leave no temporaries
    for apex in ("apex_0", "apex_1"):
        temp = int((root / f"class/apex/{apex}/temp").read_text())
        assert temp % 250 == 50
    trips = [int((root / f"class/apex/apex_0/trip_point{k}_temp").read_text()) for k in range(3)]
    assert trips == [84800, 89800, 94800]


def test_coral_collector_reads_the_canonical_samples(fleet, tmp_path) -> None:
    parse = importlib.import_module("collectors.coral.parse")
    mirror = SysfsMirror(fleet, tmp_path)
    mirror.write_tick()
    for device in [d for d in fleet.devices if d.profile.kind == "coral_gateway"][:8]:
        result = parse.read_apex(
            mirror.device_root(device.id), device=device.id, site=device.site,
            timestamp_ms=fleet.batch().timestamp_ms,
        )  # fmt: skip
        assert not result.errors
        assert agree(fleet, result.samples, CORAL_NAMES, device.id) >= 5
    hot = fleet.batch().value(
        "coral_tpu_clock_hertz",
        {"device": fleet.ground_truth()[0].device, "site": fleet.ground_truth()[0].site,
         "sensor": "apex_0"},
    )  # fmt: skip
    assert hot is not None and hot < 500e6


def test_jetson_sysfs_matches_the_fixture_layout(fleet, tmp_path) -> None:
    device = next(
        d for d in fleet.devices if d.hardware_model == "jetson-agx-orin" and d.jetpack == 6
    )
    mirror = SysfsMirror(fleet, tmp_path, tegrastats=False)
    mirror.write_tick()
    root, real = mirror.device_root(device.id), FIXTURES / "jetson_sysfs"

    def zone_types(base: Path) -> list[str]:
        zones = sorted(
            base.glob("devices/virtual/thermal/thermal_zone*"), key=lambda p: int(p.name[12:])
        )
        return [(z / "type").read_text().strip() for z in zones]

    assert zone_types(root) == zone_types(real)
    for rel in (
        "devices/platform/pwm-fan/hwmon/hwmon2/pwm1",
        "devices/platform/bus@0/39c0000.tachometer/hwmon/hwmon1/rpm",
        "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_label",
    ):
        assert (root / rel).is_file() and (real / rel).is_file()
    labels = sorted(p.read_text() for p in root.glob("bus/i2c/drivers/ina3221/*/hwmon/*/in*_label"))
    real_labels = sorted(
        p.read_text() for p in real.glob("bus/i2c/drivers/ina3221/*/hwmon/*/in*_label")
    )
    assert labels == real_labels
    assert (root / "devices/virtual/thermal/thermal_zone2/temp").read_text() == "-256000\n"


def test_jetson_collector_reads_the_canonical_samples(fleet, tmp_path) -> None:
    sysfs = importlib.import_module("collectors.jetson.sysfs")
    mirror = SysfsMirror(fleet, tmp_path, tegrastats=False)
    mirror.write_tick()
    jetsons = [d for d in fleet.devices if d.profile.kind == "jetson"]
    for model in ("jetson-agx-orin", "jetson-orin-nx", "jetson-orin-nano", "jetson-xavier-nx"):
        for device in [d for d in jetsons if d.hardware_model == model][:2]:
            result = sysfs.read_jetson(
                mirror.device_root(device.id), device=device.id, site=device.site,
                timestamp_ms=fleet.batch().timestamp_ms,
            )  # fmt: skip
            assert not result.errors
            assert agree(fleet, result.samples, JETSON_NAMES, device.id) >= 10


TEGRASTATS_LINE = re.compile(
    r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d RAM \d+/\d+MB \(lfb \d+x4MB\) SWAP 0/\d+MB \(cached 0MB\) "
    r"CPU \[(\d+%@\d+,)*\d+%@\d+\] EMC_FREQ \d+%@\d+ GR3D_FREQ \d+%@\[\d+(,\d+)?\] .* APE \d+ "
    r"([A-Za-z0-9]+@-?[\d.]+C )+([A-Z0-9_]+ \d+mW/\d+mW ?)+$"
)


def test_tegrastats_lines_have_the_jetpack_shapes(fleet) -> None:
    for device in [d for d in fleet.devices if d.profile.kind == "jetson"]:
        line = fleet.tegrastats_line(device.id)
        assert TEGRASTATS_LINE.match(line), line
        if device.jetpack == 6:
            assert "-256C" not in line and "cpu@" in line and "NVENC off" in line
        else:
            assert "CPU@" in line
            if device.hardware_model != "jetson-xavier-nx":
                assert "CV0@-256C" in line
        if device.hardware_model == "jetson-agx-orin" and device.jetpack == 5:
            assert "NC 0mW/0mW" in line


def test_tegrastats_parser_agrees_with_the_canonical_samples(fleet) -> None:
    tegrastats = importlib.import_module("collectors.jetson.tegrastats")
    batch = fleet.batch()
    for device in [d for d in fleet.devices if d.profile.kind == "jetson"][:10]:
        result = tegrastats.parse_line(
            fleet.tegrastats_line(device.id), device=device.id, site=device.site
        )
        assert not result.errors
        checked = 0
        for s in result.samples:
            assert s.timestamp_ms == batch.timestamp_ms
            expected = batch.value(s.name, s.labels)
            if s.name in ("temperature_celsius", "gpu_utilization_ratio"):
                assert expected == s.value, s.describe()
            elif s.name == "power_watts":
                assert expected == pytest.approx(s.value, abs=0.0011), s.describe()
            elif s.name == "memory_used_bytes" and "module" not in s.labels:
                assert expected == pytest.approx(s.value, abs=MiB), s.describe()
            elif s.name == "cpu_utilization_ratio" and "core" not in s.labels:
                assert expected == pytest.approx(s.value, abs=0.01), s.describe()
            else:
                continue
            checked += 1
        assert checked >= 8
        assert not any(
            s.name == "temperature_celsius" and math.isclose(s.value, -256) for s in result.samples
        )
