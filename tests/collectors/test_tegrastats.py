"""tegrastats lines of JetPack 4, 5 and 6, and the collector's three ways to get them."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.jetson.config import TegrastatsConfig
from collectors.jetson.plugin import TegrastatsCollector
from collectors.jetson.tegrastats import parse_line, parse_lines
from fleetwatch.telemetry import partition
from tests.collectors.conftest import FIXTURES, find, one

JP4 = (FIXTURES / "tegrastats_jp4.txt").read_text().splitlines()
JP5 = (FIXTURES / "tegrastats_jp5.txt").read_text().splitlines()
JP6 = (FIXTURES / "tegrastats_jp6.txt").read_text().splitlines()
NOW = 1_767_262_213_742


def parse(line: str, **kwargs: object):
    result = parse_line(line, device="jetson", timestamp_ms=NOW, **kwargs)  # type: ignore[arg-type]
    assert result.errors == []
    assert partition(result.samples).errors == []
    return result.samples


def test_every_fixture_line_parses_without_errors() -> None:
    for lines in (JP4, JP5, JP6):
        result = parse_lines(lines, device="jetson", timestamp_ms=NOW)
        assert result.errors == []
        assert len(find(result.samples, "memory_used_bytes")) == len(lines)


def test_jetpack4_nano_without_root() -> None:
    s = parse(JP4[0])
    assert one(s, "memory_used_bytes") == 1917 * 2**20
    assert one(s, "memory_total_bytes") == 3964 * 2**20
    assert one(s, "swap_used_bytes") == 12 * 2**20
    assert one(s, "cpu_utilization_ratio", core="2") == pytest.approx(0.23)
    assert one(s, "cpu_frequency_hertz", core="0") == 1479e6
    assert one(s, "gpu_utilization_ratio") == 0.0
    assert find(s, "emc_frequency_hertz") == []  # no @freq without root
    assert one(s, "temperature_celsius", sensor="gpu") == 32.5
    assert one(s, "temperature_celsius", sensor="pmic") == 50.0
    assert one(s, "power_watts", rail="POM_5V_IN") == pytest.approx(3.347)  # no unit: mW
    assert {x.timestamp_ms for x in s} == {NOW}  # JetPack 4 prints no time


def test_jetpack4_as_root_and_offline_cores() -> None:
    root = parse(JP4[1])
    assert one(root, "emc_frequency_hertz") == 1600e6
    assert one(root, "emc_utilization_ratio") == pytest.approx(0.11)
    assert one(root, "gpu_utilization_ratio") == pytest.approx(0.46)
    assert one(root, "gpu_frequency_hertz", gpc="0") == 921e6
    assert one(root, "engine_frequency_hertz", engine="ape") == 25e6
    five_watt = parse(JP4[2])
    assert one(five_watt, "cpu_core_online", core="2") == 0.0
    assert find(five_watt, "cpu_utilization_ratio", core="3") == []
    device_mean = [x for x in find(five_watt, "cpu_utilization_ratio") if "core" not in x.labels]
    assert device_mean[0].value == pytest.approx((0.07 + 0.04) / 2)  # online cores only


def test_jetpack5_agx_orin() -> None:
    s = parse(JP5[0])
    assert s[0].timestamp_ms == int(datetime(2025, 3, 14, 9, 21, 7, tzinfo=UTC).timestamp() * 1000)
    assert one(s, "gpu_utilization_ratio") == pytest.approx(0.61)
    assert [x.value for x in find(s, "gpu_frequency_hertz")] == [1300e6, 1300e6]
    assert one(s, "temperature_celsius", sensor="tj") == pytest.approx(58.781)
    assert one(s, "temperature_celsius", sensor="tboard") == 41.0
    assert one(s, "temperature_sensor_up", sensor="cv0") == 0.0  # -256C
    assert find(s, "temperature_celsius", sensor="cv0") == []
    assert one(s, "power_watts", rail="VDD_GPU_SOC") == pytest.approx(9.853)
    assert find(s, "power_watts", rail="NC") == []
    assert len(find(s, "cpu_utilization_ratio")) == 13  # 12 cores and the device mean
    idle = parse(JP5[1])
    assert one(idle, "temperature_sensor_up", sensor="gpu") == 0.0


def test_jetpack6_engines_and_missing_gpu_sensor() -> None:
    busy = parse(JP6[0])
    assert one(busy, "engine_utilization_ratio", engine="nvenc") == pytest.approx(0.81)
    assert one(busy, "engine_frequency_hertz", engine="nvenc") == 1113e6
    assert one(busy, "engine_frequency_hertz", engine="nvdec") == 0.0  # off: gated
    assert one(busy, "engine_utilization_ratio", engine="vic") == pytest.approx(0.42)
    assert one(busy, "engine_frequency_hertz", engine="pva0") == 0.0
    assert one(busy, "memory_total_bytes") == 62841 * 2**20
    idle = parse(JP6[1])
    assert find(idle, "temperature_sensor_up", sensor="gpu") == []  # absent, not offline
    nano = parse(JP6[2])
    assert one(nano, "gpu_utilization_ratio") == pytest.approx(0.93)
    assert one(nano, "gpu_frequency_hertz", gpc="0") == 624e6
    nx = parse(JP6[3])
    assert [x.labels["core"] for x in find(nx, "cpu_core_online") if x.value == 0] == [
        "4",
        "5",
        "6",
        "7",
    ]


def test_timestamps_are_in_the_device_zone() -> None:
    s = parse(JP5[0], tz=ZoneInfo("Europe/Berlin"))  # CET, UTC+1 in March 2025 before DST
    assert s[0].timestamp_ms == int(datetime(2025, 3, 14, 8, 21, 7, tzinfo=UTC).timestamp() * 1000)


def test_kb_units_thor_forms_and_three_value_rails() -> None:
    line = (
        "RAM 512000/1024000kB (lfb 1x512kB) CPU [1%@729] GR3D_FREQ @[1575,1575,1575] "
        "cpu@52.968C/52.968C VDD_GPU 1200mW/1100mW/1300mW"
    )
    s = parse(line)
    assert one(s, "memory_used_bytes") == 512000 * 1024
    assert find(s, "gpu_utilization_ratio") == []  # Thor prints no load
    assert len(find(s, "gpu_frequency_hertz")) == 3
    assert one(s, "temperature_celsius", sensor="cpu") == pytest.approx(52.968)
    assert one(s, "power_watts", rail="VDD_GPU") == 1.2


def test_malformed_fields_are_errors_and_the_rest_of_the_line_is_kept() -> None:
    broken = (
        JP5[0]
        .replace("RAM 7412/30536MB", "RAM lots")
        .replace("CPU [31%@2201,", "CPU [31%@2201,x%,")
    )
    result = parse_line(broken, device="d", line_no=7, source="log")
    assert sorted(e.message.split(":")[0] for e in result.errors) == ["CPU core 1", "RAM"]
    assert {e.line for e in result.errors} == {7}
    assert one(result.samples, "temperature_celsius", sensor="cpu") == pytest.approx(58.781)
    assert one(result.samples, "swap_total_bytes") == 15268 * 2**20
    bad_date = parse_line("13-45-2025 09:21:07 RAM 1/2MB", device="d", timestamp_ms=NOW)
    assert "timestamp" in bad_date.errors[0].message
    assert one(bad_date.samples, "memory_used_bytes") == 2**20


# --- the collector -----------------------------------------------------------------------------


def test_collector_reads_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "tegrastats.log"
    path.write_text("\n".join([*JP5, "RAM ???", *JP6]) + "\n")
    result = TegrastatsCollector(TegrastatsConfig(file=path, device="orin")).collect()
    assert [e.line for e in result.errors] == [5]
    assert len(find(result.samples, "memory_used_bytes")) == len(JP5) + len(JP6)


def test_collector_tails_a_log_file(tmp_path: Path) -> None:
    path = tmp_path / "tegrastats.log"
    path.write_text(JP5[0] + "\n" + JP5[1] + "\n")
    collector = TegrastatsCollector(TegrastatsConfig(logfile=path, device="orin"))
    first = collector.collect()  # starts with the newest line only
    assert one(first.samples, "memory_used_bytes") == 7409 * 2**20
    with path.open("a") as log:
        log.write(JP5[2] + "\n" + JP5[3][:40])  # the last line is still being written
    second = collector.collect()
    assert [x.value for x in find(second.samples, "memory_used_bytes")] == [3288 * 2**20]
    with path.open("a") as log:
        log.write(JP5[3][40:] + "\n")
    third = collector.collect()
    assert [x.value for x in find(third.samples, "memory_used_bytes")] == [3902 * 2**20]
    path.write_text(JP6[0] + "\n")  # truncated and restarted (log rotation by copytruncate)
    fourth = collector.collect()
    assert [x.value for x in find(fourth.samples, "memory_used_bytes")] == [21877 * 2**20]
    path.unlink()
    assert collector.collect().errors


def test_collector_runs_tegrastats_as_a_child_process(tmp_path: Path) -> None:
    """A stand-in tegrastats prints fixture lines at the requested --interval."""
    script = tmp_path / "tegrastats"
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(JP6) + "\n")
    script.write_text(
        "import sys, time\n"
        "interval = int(sys.argv[sys.argv.index('--interval') + 1]) / 1000\n"
        f"for line in open({str(lines)!r}):\n"
        "    print(line, end='', flush=True)\n"
        "    time.sleep(interval)\n"
        "time.sleep(30)\n"
    )
    collector = TegrastatsCollector(
        TegrastatsConfig(command=[sys.executable, str(script)], interval_ms=100, device="orin")
    )
    try:
        samples = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(find(samples, "memory_used_bytes")) < len(JP6):
            result = collector.collect()
            assert result.errors == []
            samples += result.samples
            time.sleep(0.1)
    finally:
        collector.close()
    assert [x.value / 2**20 for x in find(samples, "memory_used_bytes")] == [
        21877,
        21866,
        5488,
        2714,
    ]


def test_missing_tegrastats_binary_is_an_error(tmp_path: Path) -> None:
    collector = TegrastatsCollector(TegrastatsConfig(command=[str(tmp_path / "nope")], device="d"))
    result = collector.collect()
    collector.close()
    assert result.samples == [] and "cannot run tegrastats" in result.errors[0].message
