"""NVIDIA Jetson thermal zones, trip points, fan and INA3221 power rails from sysfs.

Zones are matched by their ``type``, never by index (numbering differs between modules and
JetPack releases); the sensor label is the type's first word in lower case (``cpu-thermal`` ->
``cpu``, ``Tboard_tegra`` -> ``tboard``, ``PMIC-Die`` -> ``pmic``), which is also how tegrastats
names it. A sensor that is powered off (``-256000``, any value at or below -40 °C, an empty or
unreadable file) is reported as ``temperature_sensor_up 0`` and gets no temperature.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from collectors.sysfs import Missing, read_attr, read_int, sorted_numerically
from fleetwatch.plugins import CollectError, CollectResult, Sample, make_sample
from fleetwatch.telemetry import now_ms

OFFLINE_MILLICELSIUS = -40_000  # at or below: no reading (jtop and tegrastats use -256 °C)
THROTTLING_TRIP_TYPES = frozenset({"passive", "hot", "critical"})  # "active" only drives fans
_ZONE_GLOBS = ("devices/virtual/thermal/thermal_zone*", "class/thermal/thermal_zone*")
_PWM_FAN_GLOBS = (
    "devices/platform/pwm-fan/hwmon/hwmon*",
    "devices/platform/*/pwm-fan/hwmon/hwmon*",
    "class/hwmon/hwmon*",
)
_PWM_FAN_NAMES = frozenset({"pwmfan", "pwm-fan"})
_TACH_GLOBS = (
    "devices/platform/*tachometer/hwmon/hwmon*/rpm",  # JetPack 5
    "devices/platform/bus@0/*tachometer/hwmon/hwmon*/rpm",  # JetPack 6
    "devices/generic_pwm_tachometer/hwmon/hwmon*/rpm",  # TX2
    "devices/pwm-fan/rpm_measured",  # JetPack 4
)
_JP4_PWM = ("devices/pwm-fan/cur_pwm", "devices/pwm-fan/target_pwm")
_INA_HWMON_GLOB = "bus/i2c/drivers/ina3221/*/hwmon/hwmon*"  # JetPack 5 and later
_INA_IIO_GLOB = "bus/i2c/drivers/ina3221x/*/iio:device*"  # JetPack 4
_SUM_OF_SHUNTS = "sum of shunt voltages"


def read_jetson(
    sysfs_root: Path | str, *, device: str, site: str = "default", timestamp_ms: int | None = None
) -> CollectResult:
    """Thermal zones, fan and power rails under ``sysfs_root`` (a ``/sys``)."""
    root = Path(sysfs_root)
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    labels = {"device": device, "site": site}
    result = CollectResult()
    _thermal_zones(root, labels, ts, result)
    _fans(root, labels, ts, result)
    _power_rails(root, labels, ts, result)
    return result


def sensor_name(zone_type: str) -> str:
    """``cpu-thermal`` -> ``cpu``, ``AO-therm`` -> ``ao``, ``Tboard_tegra`` -> ``tboard``."""
    first = re.split(r"[-_]", zone_type.strip(), maxsplit=1)[0].lower()
    return first or zone_type.strip().lower()


def _glob_all(root: Path, patterns: Iterable[str]) -> list[Path]:
    seen: dict[Path, Path] = {}
    for pattern in patterns:
        for path in root.glob(pattern):
            seen.setdefault(path.resolve(), path)
    return list(seen.values())


def _thermal_zones(root: Path, labels: dict[str, str], ts: int, result: CollectResult) -> None:
    zones = sorted_numerically(_glob_all(root, _ZONE_GLOBS))
    used: set[str] = set()
    for zone in zones:
        zone_type = read_attr(zone / "type")
        if isinstance(zone_type, Missing):
            result.errors.append(
                CollectError(str(zone / "type"), f"{zone_type.reason}: zone skipped")
            )
            continue
        sensor = sensor_name(zone_type)
        if sensor in used:  # two zones with one first word: keep the full type apart
            sensor = zone_type.strip().lower()
        used.add(sensor)
        zone_labels = {**labels, "sensor": sensor}
        temp = _zone_temp(zone / "temp", result.errors)
        result.samples.append(
            make_sample("temperature_sensor_up", zone_labels, temp is not None, ts)
        )
        if temp is not None:
            result.samples.append(make_sample("temperature_celsius", zone_labels, temp / 1000, ts))
        result.samples.extend(_trip_points(zone, zone_labels, temp, ts, result.errors))


def _zone_temp(path: Path, errors: list[CollectError]) -> int | None:
    """Millidegrees, or None for an offline sensor (an I/O failure is also an error)."""
    text = read_attr(path)
    if isinstance(text, Missing):
        if text.reason != "empty":
            errors.append(CollectError(str(path), f"{text.reason}: sensor reported as missing"))
        return None
    try:
        value = int(text)
    except ValueError:
        errors.append(CollectError(str(path), f"not an integer: {text[:40]!r}"))
        return None
    return None if value <= OFFLINE_MILLICELSIUS else value


def _trip_points(
    zone: Path, labels: dict[str, str], temp: int | None, ts: int, errors: list[CollectError]
) -> list[Sample]:
    samples: list[Sample] = []
    ahead: list[int] = []
    for path in sorted_numerically(list(zone.glob("trip_point_*_temp"))):
        index = path.name[len("trip_point_") : -len("_temp")]
        if not index.isdigit():
            continue
        value = read_int(path, errors)
        if value is None or value <= OFFLINE_MILLICELSIUS:
            continue
        kind = read_attr(zone / f"trip_point_{index}_type")
        kind_text = "unknown" if isinstance(kind, Missing) else kind.lower()
        samples.append(
            make_sample(
                "thermal_trip_point_celsius",
                {**labels, "trip": index, "type": kind_text},
                value / 1000,
                ts,
            )
        )
        if temp is not None and kind_text in THROTTLING_TRIP_TYPES and temp < value:
            ahead.append(value)
    if ahead and temp is not None:
        samples.append(
            make_sample("thermal_headroom_celsius", labels, (min(ahead) - temp) / 1000, ts)
        )
    return samples


def _fans(root: Path, labels: dict[str, str], ts: int, result: CollectResult) -> None:
    pwm_files: list[Path] = []
    for hwmon in sorted_numerically(_glob_all(root, _PWM_FAN_GLOBS)):
        name = read_attr(hwmon / "name")
        if isinstance(name, str) and name in _PWM_FAN_NAMES and (hwmon / "pwm1").exists():
            pwm_files.append(hwmon / "pwm1")
    if not pwm_files:
        pwm_files = [root / p for p in _JP4_PWM if (root / p).exists()][:1]
    for i, path in enumerate(pwm_files):
        pwm = read_int(path, result.errors)
        if pwm is not None:
            result.samples.append(
                make_sample("fan_pwm_ratio", {**labels, "fan": f"fan{i}"}, pwm / 255, ts)
            )
    for i, path in enumerate(sorted(_glob_all(root, _TACH_GLOBS))):
        rpm = read_int(path, result.errors)
        if rpm is not None:
            result.samples.append(
                make_sample("fan_speed_rpm", {**labels, "fan": f"fan{i}"}, rpm, ts)
            )


def _power_rails(root: Path, labels: dict[str, str], ts: int, result: CollectResult) -> None:
    errors = result.errors
    for hwmon in sorted(root.glob(_INA_HWMON_GLOB)):
        for label_file in sorted_numerically(list(hwmon.glob("in*_label"))):
            channel = label_file.name[2 : -len("_label")]
            rail = read_attr(label_file)
            if isinstance(rail, Missing):
                errors.append(CollectError(str(label_file), rail.reason))
                continue
            if rail == "NC" or channel == "7" or rail.lower() == _SUM_OF_SHUNTS:
                continue
            millivolts = read_int(hwmon / f"in{channel}_input", errors)
            milliamps = read_int(hwmon / f"curr{channel}_input", errors)
            if millivolts is not None and milliamps is not None:
                watts = millivolts * milliamps / 1e6
                result.samples.append(
                    make_sample("power_watts", {**labels, "rail": rail}, watts, ts)
                )
    for iio in sorted(root.glob(_INA_IIO_GLOB)):
        for name_file in sorted_numerically(list(iio.glob("rail_name_*"))):
            channel = name_file.name[len("rail_name_") :]
            rail = read_attr(name_file)
            if isinstance(rail, Missing):
                errors.append(CollectError(str(name_file), rail.reason))
                continue
            if rail == "NC":
                continue
            milliwatts = read_int(iio / f"in_power{channel}_input", errors)
            if milliwatts is not None:
                result.samples.append(
                    make_sample("power_watts", {**labels, "rail": rail}, milliwatts / 1000, ts)
                )
