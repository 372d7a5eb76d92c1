"""The canonical metric catalogue: every name fleetwatch's collectors emit, with unit and labels.

Shared contract of collectors, simulator and analysis. Every sample also carries ``device`` and
``site``. docs/metrics.md is generated from this table and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str
    labels: tuple[str, ...]
    help: str
    sources: tuple[str, ...]


COMPONENT_STATES = (
    "NEW", "INSTALLED", "STARTING", "RUNNING", "STOPPING", "ERRORED", "BROKEN", "FINISHED",
)

# fmt: off
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("temperature_celsius", "°C", ("sensor",),
               "Jetson thermal zone by type (lower-case, -thermal/-therm stripped: cpu, gpu, soc0, "
               "cv0, tj, ...) or Coral apex_N. Offline sensors are absent, never a value.",
               ("jetson", "tegrastats", "coral")),
    MetricSpec("thermal_trip_point_celsius", "°C", ("sensor", "trip", "type"),
               "Trip points as read from the device (Coral trip 0/1/2 type throttle; Jetson zone "
               "trip index with its type passive/active/hot/critical).", ("jetson", "coral")),
    MetricSpec("coral_tpu_clock_hertz", "Hz", ("sensor",),
               "Edge TPU clock derived from temp vs trip points: 500/250/125/62.5 MHz.",
               ("coral",)),
    MetricSpec("thermal_headroom_celsius", "°C", ("sensor",),
               "Degrees to the lowest trip point not yet reached.", ("coral", "jetson")),
    MetricSpec("fan_speed_rpm", "rpm", ("fan",), "Fan tachometer.", ("jetson",)),
    MetricSpec("fan_pwm_ratio", "ratio", ("fan",), "Fan PWM duty, pwm/255.", ("jetson",)),
    MetricSpec("power_watts", "W", ("rail",), "Power of one rail.", ("jetson", "tegrastats")),
    MetricSpec("cpu_utilization_ratio", "ratio", ("core",),
               "CPU load 0..1; per core with `core`, device mean without.",
               ("tegrastats", "iotedge", "greengrass")),
    MetricSpec("gpu_utilization_ratio", "ratio", (), "GPU load 0..1.", ("tegrastats",)),
    MetricSpec("memory_used_bytes", "bytes", ("module",),
               "Memory in use (device, or one IoT Edge module with `module`).",
               ("tegrastats", "iotedge", "greengrass")),
    MetricSpec("memory_total_bytes", "bytes", ("module",), "Memory size.",
               ("tegrastats", "iotedge")),
    MetricSpec("disk_free_bytes", "bytes", ("disk",), "Filesystem free space.", ("iotedge",)),
    MetricSpec("disk_total_bytes", "bytes", ("disk",), "Filesystem size.", ("iotedge",)),
    MetricSpec("network_receive_bytes_total", "bytes", ("module",), "Bytes received.",
               ("iotedge",)),
    MetricSpec("network_transmit_bytes_total", "bytes", ("module",), "Bytes sent.", ("iotedge",)),
    MetricSpec("module_restarts_total", "count", ("module",),
               "IoT Edge module starts (edgeAgent_module_start_total).", ("iotedge",)),
    MetricSpec("module_availability_ratio", "ratio", ("module",),
               "Running-correctly / expected-running time.", ("iotedge",)),
    MetricSpec("message_queue_length", "messages", ("endpoint", "priority"),
               "edgeHub store-and-forward backlog.", ("iotedge",)),
    MetricSpec("uplink_offline_total", "count", (), "Times edgeHub went offline.", ("iotedge",)),
    MetricSpec("deployment_duration_seconds", "s", (), "Time to apply a deployment.", ("iotedge",)),
    MetricSpec("component_state", "0/1", ("component", "state"),
               "Greengrass component lifecycle, one series per state (kube-state-metrics style): "
               "1 for the current state, 0 for the others.", ("greengrass",)),
    MetricSpec("device_healthy", "0/1", (), "1 HEALTHY, 0 UNHEALTHY.", ("greengrass",)),
    MetricSpec("deployment_status", "0/1", ("deployment", "status"),
               "1 for the current status of a deployment.", ("greengrass",)),
)
# fmt: on

BY_NAME = {spec.name: spec for spec in CATALOGUE}
