"""Coral and Jetson sysfs readers on the fixture trees and on damaged copies of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collectors.coral.config import CoralConfig
from collectors.coral.parse import read_apex
from collectors.coral.plugin import CoralCollector
from collectors.jetson.config import JetsonConfig
from collectors.jetson.plugin import JetsonCollector
from collectors.jetson.sysfs import read_jetson, sensor_name
from fleetwatch.telemetry import partition
from tests.collectors.conftest import FIXTURES, find, one

TS = 1_767_262_213_742

# --- Coral -------------------------------------------------------------------------------------


def test_coral_fixture_values() -> None:
    result = read_apex(FIXTURES / "coral_sysfs", device="coral-1", site="s", timestamp_ms=TS)
    assert result.errors == []
    s = result.samples
    assert one(s, "temperature_celsius", sensor="apex_0") == pytest.approx(47.3)
    assert one(s, "temperature_celsius", sensor="apex_1") == pytest.approx(86.05)
    assert one(s, "coral_tpu_clock_hertz", sensor="apex_0") == 500e6
    assert one(s, "coral_tpu_clock_hertz", sensor="apex_1") == 250e6  # past trip 0
    assert one(s, "thermal_trip_point_celsius", sensor="apex_1", trip="1") == pytest.approx(89.8)
    assert one(s, "thermal_headroom_celsius", sensor="apex_0") == pytest.approx(84.8 - 47.3)
    assert one(s, "thermal_headroom_celsius", sensor="apex_1") == pytest.approx(89.8 - 86.05)
    # hw_temp_warn2 is enabled (shutdown), hw_temp_warn1 is not
    assert one(
        s, "thermal_trip_point_celsius", sensor="apex_0", trip="hw_temp_warn2", type="shutdown"
    ) == pytest.approx(99.8)
    assert find(s, "thermal_trip_point_celsius", trip="hw_temp_warn1") == []
    assert partition(s).errors == []


def write(apex: Path, **files: int | str) -> None:
    for name, value in files.items():
        (apex / name).write_text(f"{value}\n")


@pytest.mark.parametrize(
    ("temp", "clock"), [(84_799, 500e6), (84_800, 250e6), (89_800, 125e6), (99_000, 62.5e6)]
)
def test_coral_clock_counts_trip_points_reached(coral_root: Path, temp: int, clock: float) -> None:
    write(coral_root / "class/apex/apex_0", temp=temp)
    s = read_apex(coral_root, device="d").samples
    assert one(s, "coral_tpu_clock_hertz", sensor="apex_0") == clock


def test_coral_uses_the_trip_points_it_reads(coral_root: Path) -> None:
    apex = coral_root / "class/apex/apex_0"
    write(
        apex,
        trip_point0_temp=40_050,
        trip_point1_temp=45_050,
        trip_point2_temp=70_050,
        hw_temp_warn1_en=1,
        hw_temp_warn1=80_050,
    )
    s = read_apex(coral_root, device="d").samples
    assert one(s, "coral_tpu_clock_hertz", sensor="apex_0") == 125e6  # 47.3 °C is past two
    assert one(s, "thermal_headroom_celsius", sensor="apex_0") == pytest.approx(70.05 - 47.3)
    assert one(
        s, "thermal_trip_point_celsius", sensor="apex_0", trip="hw_temp_warn1", type="interrupt"
    ) == pytest.approx(80.05)


def test_coral_polling_off_means_no_derived_clock(coral_root: Path) -> None:
    write(coral_root / "class/apex/apex_1", temp_poll_interval=0)
    result = read_apex(coral_root, device="d")
    assert find(result.samples, "coral_tpu_clock_hertz", sensor="apex_1") == []
    assert one(result.samples, "temperature_celsius", sensor="apex_1") == pytest.approx(86.05)
    assert result.errors == []


def test_coral_vanished_and_garbled_files(coral_root: Path) -> None:
    (coral_root / "class/apex/apex_0/trip_point1_temp").unlink()
    write(coral_root / "class/apex/apex_1", temp="ALIVE")
    result = read_apex(coral_root, device="d")
    sources = sorted(e.source for e in result.errors)
    assert any(src.endswith("apex_0/trip_point1_temp") for src in sources)
    assert any(src.endswith("apex_1/temp") for src in sources)
    # no clock without all three trip points; everything else of apex_0 is kept
    assert find(result.samples, "coral_tpu_clock_hertz", sensor="apex_0") == []
    assert one(result.samples, "temperature_celsius", sensor="apex_0") == pytest.approx(47.3)
    assert one(result.samples, "thermal_trip_point_celsius", sensor="apex_1", trip="0") == 84.8
    assert find(result.samples, "temperature_celsius", sensor="apex_1") == []


def test_coral_without_devices_reports_nothing(tmp_path: Path) -> None:
    result = CoralCollector(CoralConfig(sysfs_root=tmp_path, device="d")).collect()
    assert (result.samples, result.errors) == ([], [])


# --- Jetson ------------------------------------------------------------------------------------


def test_jetson_fixture_values() -> None:
    result = read_jetson(FIXTURES / "jetson_sysfs", device="orin", site="s", timestamp_ms=TS)
    assert result.errors == []
    s = result.samples
    assert one(s, "temperature_celsius", sensor="cpu") == pytest.approx(52.562)
    assert one(s, "temperature_celsius", sensor="tj") == pytest.approx(52.562)
    assert one(s, "temperature_celsius", sensor="soc1") == pytest.approx(49.656)
    for offline in ("cv0", "cv1", "cv2"):  # -256000: powered off
        assert find(s, "temperature_celsius", sensor=offline) == []
        assert one(s, "temperature_sensor_up", sensor=offline) == 0.0
    assert one(s, "temperature_sensor_up", sensor="gpu") == 1.0
    assert one(s, "fan_pwm_ratio", fan="fan0") == pytest.approx(102 / 255)
    assert one(s, "fan_speed_rpm", fan="fan0") == 2463
    assert one(s, "power_watts", rail="VDD_GPU_SOC") == pytest.approx(4.968 * 0.486)
    assert one(s, "power_watts", rail="VDDQ_VDD2_1V8AO") == pytest.approx(4.984 * 0.060)
    rails = {x.labels["rail"] for x in find(s, "power_watts")}
    assert rails == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}  # no NC, in7
    assert partition(s).errors == []


def test_zones_are_matched_by_type_not_index(jetson_root: Path) -> None:
    zones = jetson_root / "devices/virtual/thermal"
    os.rename(zones / "thermal_zone0", zones / "thermal_zone_tmp")
    os.rename(zones / "thermal_zone8", zones / "thermal_zone0")
    os.rename(zones / "thermal_zone_tmp", zones / "thermal_zone8")
    (zones / "thermal_zone8" / "temp").write_text("61000\n")
    s = read_jetson(jetson_root, device="d").samples
    assert one(s, "temperature_celsius", sensor="cpu") == 61.0


@pytest.mark.parametrize("content", ["", "-256000", "-40000", "-45123"])
def test_offline_sensor_values(jetson_root: Path, content: str) -> None:
    (jetson_root / "devices/virtual/thermal/thermal_zone1/temp").write_text(content + "\n")
    result = read_jetson(jetson_root, device="d")
    assert result.errors == []
    assert find(result.samples, "temperature_celsius", sensor="gpu") == []
    assert one(result.samples, "temperature_sensor_up", sensor="gpu") == 0.0


def test_vanished_and_unreadable_sensor_files(jetson_root: Path) -> None:
    zones = jetson_root / "devices/virtual/thermal"
    (zones / "thermal_zone1/temp").unlink()  # vanished between glob and read
    (zones / "thermal_zone5/temp").unlink()
    (zones / "thermal_zone5/temp").mkdir()  # unreadable: reading a directory fails (EISDIR)
    (zones / "thermal_zone6/type").unlink()  # a zone without a name cannot be reported
    result = read_jetson(jetson_root, device="d")
    assert len(result.errors) == 3
    assert one(result.samples, "temperature_sensor_up", sensor="gpu") == 0.0
    assert one(result.samples, "temperature_sensor_up", sensor="soc0") == 0.0
    assert find(result.samples, "temperature_celsius", sensor="soc1") == []
    assert one(result.samples, "temperature_celsius", sensor="cpu") == pytest.approx(52.562)
    assert one(result.samples, "fan_speed_rpm", fan="fan0") == 2463


def test_trip_points_and_headroom(jetson_root: Path) -> None:
    tj = jetson_root / "devices/virtual/thermal/thermal_zone8"
    for index, (temp, kind) in enumerate(
        [(85000, "active"), (99000, "passive"), (105000, "critical")]
    ):
        (tj / f"trip_point_{index}_temp").write_text(f"{temp}\n")
        (tj / f"trip_point_{index}_type").write_text(f"{kind}\n")
    s = read_jetson(jetson_root, device="d").samples
    assert one(s, "thermal_trip_point_celsius", sensor="tj", trip="0", type="active") == 85.0
    assert one(s, "thermal_trip_point_celsius", sensor="tj", trip="2", type="critical") == 105.0
    # the active (fan) trip is not throttling: headroom runs to the passive one
    assert one(s, "thermal_headroom_celsius", sensor="tj") == pytest.approx(99.0 - 52.562)


def test_jetpack4_layouts(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    zone = root / "devices/virtual/thermal/thermal_zone3"
    zone.mkdir(parents=True)
    (zone / "type").write_text("CPU-therm\n")
    (zone / "temp").write_text("34500\n")
    fan = root / "devices/pwm-fan"
    fan.mkdir(parents=True)
    (fan / "target_pwm").write_text("77\n")
    (fan / "rpm_measured").write_text("1510\n")
    iio = root / "bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    iio.mkdir(parents=True)
    for channel, (rail, mw) in enumerate([("POM_5V_IN", 3347), ("POM_5V_GPU", 119), ("NC", 0)]):
        (iio / f"rail_name_{channel}").write_text(rail + "\n")
        (iio / f"in_power{channel}_input").write_text(f"{mw}\n")
    result = JetsonCollector(JetsonConfig(sysfs_root=root, device="nano")).collect()
    assert result.errors == []
    s = result.samples
    assert one(s, "temperature_celsius", sensor="cpu") == 34.5
    assert one(s, "fan_pwm_ratio") == pytest.approx(77 / 255)
    assert one(s, "fan_speed_rpm") == 1510
    assert one(s, "power_watts", rail="POM_5V_IN") == pytest.approx(3.347)
    assert find(s, "power_watts", rail="NC") == []


@pytest.mark.parametrize(
    ("zone_type", "sensor"),
    [
        ("cpu-thermal", "cpu"),
        ("AO-therm", "ao"),
        ("Tboard_tegra", "tboard"),
        ("PMIC-Die", "pmic"),
        ("thermal-fan-est", "thermal"),
        ("tj-thermal", "tj"),
        ("-x", "-x"),
    ],
)
def test_sensor_names(zone_type: str, sensor: str) -> None:
    assert sensor_name(zone_type) == sensor
