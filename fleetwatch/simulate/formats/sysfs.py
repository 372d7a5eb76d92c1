"""Coral apex and Jetson sysfs trees, as files under a per-device directory treated as ``/sys``.

Paths and values follow tests/fixtures/coral_sysfs and tests/fixtures/jetson_sysfs (FORMATS.md §3,
§4). Files are written atomically (temporary file + rename) so a collector reading concurrently
never sees half a value, and only when their content changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fleetwatch.simulate import hardware as hw
from fleetwatch.simulate.physics import SENSOR_INDEX, sensor_types
from fleetwatch.simulate.series import rail_milliamps

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

import numpy as np

INA_HWMON = {"1-0040": "hwmon3", "1-0041": "hwmon4"}


def coral_files(sim: Simulator, i: int) -> dict[str, str]:
    """``class/apex/apex_N/*`` of device index ``i`` (a Coral gateway), relative path -> text."""
    files: dict[str, str] = {}
    for a in range(sim.devices[i].profile.apex_count):
        base = f"class/apex/apex_{a}"
        values = {
            "temp": int(sim.state.apex_mc[i, a]),
            "trip_point0_temp": hw.CORAL_TRIP_POINTS_MILLIC[0],
            "trip_point1_temp": hw.CORAL_TRIP_POINTS_MILLIC[1],
            "trip_point2_temp": hw.CORAL_TRIP_POINTS_MILLIC[2],
            "hw_temp_warn1": hw.CORAL_SHUTDOWN_MILLIC,
            "hw_temp_warn1_en": 0,
            "hw_temp_warn2": hw.CORAL_SHUTDOWN_MILLIC,
            "hw_temp_warn2_en": 1,
            "temp_poll_interval": 5000,
            "status": "ALIVE",
            "driver_version": "1.2",
            "framework_version": "1.1.4",
            "device_type": "apex",
            "revision": 0,
            "pci_address": f"0000:0{3 + a}:00.0",
            "reset_count": 0,
            "is_device_owned": 1,
            "device_owner": 2317,
            "write_open_count": 1,
            "unique_id": f"{(sim.config.seed * 7919 + i * 2 + a) & (2**128 - 1):032x}",
            "node_0_page_table_entries": 8192,
            "node_0_simple_page_table_entries": 8192,
            "node_0_num_mapped_pages": 1536,
            "bar_offsets": "2: 0x0",
            "bar_sizes": "2: 0x100000",
        }
        for name, value in values.items():
            files[f"{base}/{name}"] = f"{value}\n"
    return files


def tach_dir(jetpack: int | None) -> str:
    if jetpack == 6:
        return "devices/platform/bus@0/39c0000.tachometer/hwmon/hwmon1"
    return "devices/platform/39c0000.tachometer/hwmon/hwmon1"


def jetson_files(sim: Simulator, i: int) -> dict[str, str]:
    """Thermal zones, pwm-fan, tachometer and INA3221 files of device index ``i`` (a Jetson)."""
    dev, st = sim.devices[i], sim.state
    prof = dev.profile
    files: dict[str, str] = {}
    for zone, (name, sysfs_type) in enumerate(sensor_types(dev)):
        base = f"devices/virtual/thermal/thermal_zone{zone}"
        files[f"{base}/type"] = f"{sysfs_type}\n"
        files[f"{base}/temp"] = f"{int(st.sensor_mc[i, SENSOR_INDEX[name]])}\n"
        files[f"{base}/mode"] = "enabled\n"
        files[f"{base}/policy"] = "step_wise\n"
        if name == prof.throttle_sensor:
            for k, (mc, typ) in enumerate(prof.trip_points):
                files[f"{base}/trip_point_{k}_temp"] = f"{mc}\n"
                files[f"{base}/trip_point_{k}_type"] = f"{typ}\n"
                files[f"{base}/trip_point_{k}_hyst"] = "2000\n"
    fan = "devices/platform/pwm-fan/hwmon/hwmon2"
    files[f"{fan}/name"] = "pwmfan\n"
    files[f"{fan}/pwm1"] = f"{int(st.fan_pwm[i])}\n"
    files[f"{fan}/pwm1_enable"] = "1\n"
    files[f"{tach_dir(dev.jetpack)}/rpm"] = f"{int(st.fan_rpm[i])}\n"
    idx = np.array([i])
    nodes = {r.node for r in prof.rails} | {node for node, _ in prof.nc_channels}
    for node in sorted(nodes):
        base = f"bus/i2c/drivers/ina3221/{node}/hwmon/{INA_HWMON[node]}"
        files[f"{base}/name"] = "ina3221\n"
        files[f"{base}/in7_label"] = "sum of shunt voltages\n"
        files[f"{base}/in7_input"] = "0\n"
    for node, ch in prof.nc_channels:
        base = f"bus/i2c/drivers/ina3221/{node}/hwmon/{INA_HWMON[node]}"
        for key, value in (("label", "NC"), ("input", "0")):
            files[f"{base}/in{ch}_{key}"] = f"{value}\n"
        for key in ("input", "max", "crit"):
            files[f"{base}/curr{ch}_{key}"] = "0\n"
    for rail in prof.rails:
        base = f"bus/i2c/drivers/ina3221/{rail.node}/hwmon/{INA_HWMON[rail.node]}"
        files[f"{base}/in{rail.channel}_label"] = f"{rail.name}\n"
        files[f"{base}/in{rail.channel}_input"] = f"{rail.millivolts}\n"
        files[f"{base}/curr{rail.channel}_input"] = f"{int(rail_milliamps(sim, idx, rail)[0])}\n"
        files[f"{base}/curr{rail.channel}_max"] = "7184\n"
        files[f"{base}/curr{rail.channel}_crit"] = "8832\n"
    return files


def device_files(sim: Simulator, i: int) -> dict[str, str]:
    kind = sim.devices[i].profile.kind
    return jetson_files(sim, i) if kind == "jetson" else coral_files(sim, i)


class SysfsWriter:
    """Mirrors each device's sysfs files under ``root/<device id>/``, writing only changes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._last: dict[str, str] = {}
        self._dirs: set[Path] = set()
        self.writes = 0

    def device_root(self, device_id: str) -> Path:
        return self.root / device_id

    def write(self, device_id: str, files: dict[str, str]) -> None:
        base = self.device_root(device_id)
        for rel, text in files.items():
            key = f"{device_id}/{rel}"
            if self._last.get(key) == text:
                continue
            path = base / rel
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            write_atomic(path, text, mkdir=False)
            self._last[key] = text
            self.writes += 1


def write_atomic(path: Path, text: str, *, mkdir: bool = True) -> None:
    """Write then rename, so a reader sees the old value or the new one, never a torn file."""
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
