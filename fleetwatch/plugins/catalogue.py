"""The canonical metric catalogue: every name fleetwatch's collectors emit, with unit and labels.

Shared contract of collectors, simulator and analysis. Every sample also carries ``device`` and
``site``; ``labels`` lists the other labels a series may carry (a series carries a subset: a
device-wide series omits ``module`` or ``core``). ``docs/metrics.md`` is generated from this
table by :func:`render_markdown` (``python -m fleetwatch.plugins.catalogue > docs/metrics.md``)
and a test keeps the two equal, and another checks that every canonical name a collector emits
on the fixtures is listed here.

Besides these canonical names, the IoT Edge collector keeps every exposed Prometheus family
under its exposed name (``edgeAgent_*``, ``edgehub_*``, module metrics) and the Greengrass
emitter keeps metrics it does not know as ``greengrass_<namespace>_<name>``.
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
    # (source, native name or derivation) pairs: the mapping docs/metrics.md shows
    native: tuple[tuple[str, str], ...] = ()


COMPONENT_STATES = (
    "NEW",
    "INSTALLED",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "ERRORED",
    "BROKEN",
    "FINISHED",
)
# coreDeviceExecutionStatus of ListEffectiveDeployments (FSS deployment status uses the same
# IoT Jobs words)
DEPLOYMENT_STATUSES = (
    "IN_PROGRESS",
    "QUEUED",
    "FAILED",
    "COMPLETED",
    "TIMED_OUT",
    "CANCELED",
    "REJECTED",
    "SUCCEEDED",
)
SOURCES = ("iotedge", "greengrass", "greengrass_cloud", "coral", "jetson", "tegrastats")

# fmt: off
CATALOGUE: tuple[MetricSpec, ...] = (
    # --- thermal ---------------------------------------------------------------------------
    MetricSpec("temperature_celsius", "°C", ("sensor",),
               "Jetson thermal zone by type (its first word, lower case: cpu, gpu, soc0, cv0, "
               "tj, tboard, ...) or Coral apex_N. Offline sensors are absent, never a value.",
               ("jetson", "tegrastats", "coral"),
               (("jetson", "thermal_zone*/temp (m°C) by thermal_zone*/type"),
                ("tegrastats", "NAME@T C"), ("coral", "apex_N/temp (m°C)"))),
    MetricSpec("temperature_sensor_up", "0/1", ("sensor",),
               "1 when the sensor gave a reading, 0 when it is offline (-256 °C, <= -40 °C, "
               "empty or unreadable).", ("jetson", "tegrastats"),
               (("jetson", "thermal_zone*/temp"), ("tegrastats", "NAME@-256C"))),
    MetricSpec("thermal_trip_point_celsius", "°C", ("sensor", "trip", "type"),
               "Trip points as read from the device (Coral trip 0/1/2 type throttle, enabled "
               "hw_temp_warn1/2 type interrupt/shutdown; Jetson zone trip index with its type "
               "passive/active/hot/critical).", ("jetson", "coral"),
               (("jetson", "thermal_zone*/trip_point_K_temp, _type"),
                ("coral", "apex_N/trip_point{0,1,2}_temp, hw_temp_warn{1,2} when _en=1"))),
    MetricSpec("coral_tpu_clock_hertz", "Hz", ("sensor",),
               "Edge TPU clock derived from temp vs trip points: 500/250/125/62.5 MHz. Absent "
               "when temp_poll_interval is 0 (the driver does not scale then).", ("coral",),
               (("coral", "500 MHz / 2^(trip points with temp >= trip)"),)),
    MetricSpec("thermal_headroom_celsius", "°C", ("sensor",),
               "Degrees to the lowest trip point not yet reached (Jetson: passive, hot and "
               "critical trips; active trips only drive the fan).", ("coral", "jetson"),
               (("coral", "min(trip > temp) - temp"), ("jetson", "min(trip > temp) - temp"))),
    MetricSpec("fan_speed_rpm", "rpm", ("fan",), "Fan tachometer.", ("jetson",),
               (("jetson", "*tachometer/hwmon/hwmon*/rpm; JetPack 4 pwm-fan/rpm_measured"),)),
    MetricSpec("fan_pwm_ratio", "ratio", ("fan",), "Fan PWM duty, pwm/255.", ("jetson",),
               (("jetson", "hwmon name=pwmfan pwm1; JetPack 4 pwm-fan/cur_pwm"),)),
    # --- power -----------------------------------------------------------------------------
    MetricSpec("power_watts", "W", ("rail",), "Power of one rail (NC channels skipped).",
               ("jetson", "tegrastats"),
               (("jetson", "INA3221 inK_input mV × currK_input mA; JetPack 4 in_powerK_input"),
                ("tegrastats", "RAIL cur[mW]/avg[mW] (current value)"))),
    # --- compute ---------------------------------------------------------------------------
    MetricSpec("cpu_utilization_ratio", "ratio", ("core", "module"),
               "CPU load 0..1; per core with `core`, per IoT Edge module with `module`, device "
               "mean without either.", ("tegrastats", "iotedge", "greengrass"),
               (("tegrastats", "CPU [x%@f,...] (device: mean of online cores)"),
                ("iotedge", "edgeAgent_used_cpu_percent{quantile=\"0.5\"} / 100"),
                ("greengrass", "SystemMetrics/CpuUsage / 100"))),
    MetricSpec("cpu_frequency_hertz", "Hz", ("core",), "Core clock.", ("tegrastats",),
               (("tegrastats", "CPU [x%@f MHz]"),)),
    MetricSpec("cpu_core_online", "0/1", ("core",), "0 for a core tegrastats shows as off.",
               ("tegrastats",), (("tegrastats", "CPU [..., off]"),)),
    MetricSpec("gpu_utilization_ratio", "ratio", (), "GPU load 0..1.", ("tegrastats",),
               (("tegrastats", "GR3D_FREQ x%"),)),
    MetricSpec("gpu_frequency_hertz", "Hz", ("gpc",), "GPU clock per GPC.", ("tegrastats",),
               (("tegrastats", "GR3D_FREQ x%@f or x%@[f0,f1]"),)),
    MetricSpec("emc_utilization_ratio", "ratio", (), "Memory controller load 0..1.",
               ("tegrastats",), (("tegrastats", "EMC_FREQ x%"),)),
    MetricSpec("emc_frequency_hertz", "Hz", (), "Memory controller clock.", ("tegrastats",),
               (("tegrastats", "EMC_FREQ x%@f"),)),
    MetricSpec("engine_utilization_ratio", "ratio", ("engine",),
               "Load of an accelerator engine (nvenc, vic, ...).", ("tegrastats",),
               (("tegrastats", "NVENC x%@f, VIC x%@f"),)),
    MetricSpec("engine_frequency_hertz", "Hz", ("engine",),
               "Clock of an accelerator engine; 0 when gated (off).", ("tegrastats",),
               (("tegrastats", "NVENC f, VIC_FREQ f, APE f, NVDEC off"),)),
    # --- memory and disk -------------------------------------------------------------------
    MetricSpec("memory_used_bytes", "bytes", ("module",),
               "Memory in use (device, or one IoT Edge module with `module`).",
               ("tegrastats", "iotedge", "greengrass"),
               (("tegrastats", "RAM used/total MB (MiB)"),
                ("iotedge", "edgeAgent_used_memory_bytes (module_name=host: device)"),
                ("greengrass", "SystemMetrics/SystemMemUsage × 2^20"))),
    MetricSpec("memory_total_bytes", "bytes", ("module",), "Memory size.",
               ("tegrastats", "iotedge"),
               (("tegrastats", "RAM used/total MB"), ("iotedge", "edgeAgent_total_memory_bytes"))),
    MetricSpec("swap_used_bytes", "bytes", (), "Swap in use.", ("tegrastats",),
               (("tegrastats", "SWAP used/total MB"),)),
    MetricSpec("swap_total_bytes", "bytes", (), "Swap size.", ("tegrastats",),
               (("tegrastats", "SWAP used/total MB"),)),
    MetricSpec("disk_free_bytes", "bytes", ("disk",), "Filesystem free space.", ("iotedge",),
               (("iotedge", "edgeAgent_available_disk_space_bytes{disk_name}"),)),
    MetricSpec("disk_total_bytes", "bytes", ("disk",), "Filesystem size.", ("iotedge",),
               (("iotedge", "edgeAgent_total_disk_space_bytes{disk_name}"),)),
    MetricSpec("open_file_descriptors", "count", (), "File descriptors open on the device.",
               ("greengrass",), (("greengrass", "SystemMetrics/TotalNumberOfFDs"),)),
    # --- network and messaging -------------------------------------------------------------
    MetricSpec("network_receive_bytes_total", "bytes", ("module",),
               "Bytes received (resets when the IoT Edge instance_number changes).", ("iotedge",),
               (("iotedge", "edgeAgent_total_network_in_bytes"),)),
    MetricSpec("network_transmit_bytes_total", "bytes", ("module",), "Bytes sent.",
               ("iotedge",), (("iotedge", "edgeAgent_total_network_out_bytes"),)),
    MetricSpec("message_queue_length", "messages", ("endpoint", "priority"),
               "edgeHub store-and-forward backlog.", ("iotedge",),
               (("iotedge", "edgehub_queue_length"),)),
    MetricSpec("uplink_offline_total", "count", (), "Times edgeHub went offline.",
               ("iotedge",), (("iotedge", "sum of edgehub_offline_count_total"),)),
    # --- modules, components, deployments --------------------------------------------------
    MetricSpec("module_restarts_total", "count", ("module",),
               "IoT Edge module starts (edgeAgent_module_start_total).", ("iotedge",),
               (("iotedge", "edgeAgent_module_start_total, summed over module_version"),)),
    MetricSpec("module_availability_ratio", "ratio", ("module",),
               "Running-correctly / expected-running time.", ("iotedge",),
               (("iotedge", "edgeAgent_total_time_running_correctly_seconds / "
                            "edgeAgent_total_time_expected_running_seconds"),)),
    MetricSpec("deployment_duration_seconds", "s", (),
               "Mean time to apply a deployment since the runtime started.", ("iotedge",),
               (("iotedge", "edgeAgent_deployment_time_seconds_sum / _count"),)),
    MetricSpec("component_state", "0/1", ("component", "state"),
               "Greengrass component lifecycle, one series per state (kube-state-metrics style): "
               "1 for the current state, 0 for the others.", ("greengrass", "greengrass_cloud"),
               (("greengrass", "FSS components[].status"),
                ("greengrass_cloud", "ListInstalledComponents lifecycleState"))),
    MetricSpec("component_count", "count", ("state",),
               "Greengrass components per lifecycle state (FSS: COMPLETE messages only).",
               ("greengrass",),
               (("greengrass", "GreengrassComponents/NumberOfComponents<State>; FSS COMPLETE"),)),
    MetricSpec("device_healthy", "0/1", (), "1 HEALTHY, 0 UNHEALTHY.",
               ("greengrass", "greengrass_cloud"),
               (("greengrass", "FSS overallDeviceStatus"),
                ("greengrass_cloud", "GetCoreDevice status"))),
    MetricSpec("deployment_status", "0/1", ("deployment", "status"),
               "1 for the current status of a deployment, 0 for the other statuses; "
               "`deployment` is the deployment id.", ("greengrass", "greengrass_cloud"),
               (("greengrass", "FSS deploymentInformation.status"),
                ("greengrass_cloud", "ListEffectiveDeployments coreDeviceExecutionStatus"))),
)
# fmt: on

BY_NAME = {spec.name: spec for spec in CATALOGUE}

_PREAMBLE = """\
# Metric catalogue

Generated from `fleetwatch/plugins/catalogue.py` by `python -m fleetwatch.plugins.catalogue`;
`tests/collectors/test_catalogue.py` fails when this file and the catalogue differ, and when a
collector emits a canonical name that is not listed here. Do not edit by hand.

Every sample carries `device` and `site`. The labels column lists the other labels a series may
carry; a device-wide series omits `module`, `core` and the like. Names follow Prometheus naming:
base units in the name, `_total` for counters, `_ratio` for 0..1.

Besides these canonical names the IoT Edge collector keeps every exposed family under its
exposed name and labels (`edgeAgent_*`, `edgehub_*`, `edgeagent_direct_method_invocations_count`,
module metrics; `edge_device` becomes `device`, labels that clash with fleetwatch's own are kept
as `exported_<name>`), and the Greengrass emitter keeps metrics it does not know as
`greengrass_<namespace>_<name>`.
"""

_NOTES = """\
## Choices

- **States as one series per state.** Greengrass component lifecycle states
  ({component_states}) and deployment statuses ({deployment_statuses}) are not strings in a
  label of one series: each component (deployment) gets one series per state, valued 1 for the
  current state and 0 for the others, as kube-state-metrics does for pod phases. A state not in
  the list (the fleet status service also reports STATELESS, UNINSTALLING, UNINSTALLED) gets
  its own series, valued 1. This keeps values numeric, lets `sum by (state)` count components
  per state, and makes "BROKEN for 10 minutes" a plain threshold rule. `component_count`
  additionally counts components per state where the source gives the full list (the nucleus
  emitter; FSS COMPLETE messages, chunks reassembled), never from a PARTIAL message, which
  lists only the components that changed.
- **Counter resets.** IoT Edge counters restart from zero when the runtime's
  `instance_number` changes; the collector reports each change as an event.
- **NaN quantiles** of IoT Edge summaries mean "nothing observed for ~10 minutes": they are
  skipped and counted, not stored and not errors.
- **Offline sensors** (-256 °C and anything at or below -40 °C, empty or unreadable files) give
  `temperature_sensor_up 0` and no temperature.
- **Thresholds are read, never assumed.** Coral trip points, the derived TPU clock and every
  headroom come from the values the device reports; driver defaults differ between builds.
- **Coral USB Accelerator**: it has no thermal interface (no sysfs, no public API); fleetwatch
  reports nothing for it rather than invent values.
- **Units.** tegrastats and the Greengrass emitter say MB and mean MiB (2^20 bytes).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """docs/metrics.md, exactly."""
    lines = [_PREAMBLE, "## Canonical metrics", ""]
    lines.append("| name | unit | labels | sources | help |")
    lines.append("| --- | --- | --- | --- | --- |")
    for spec in CATALOGUE:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "–"
        lines.append(
            f"| `{spec.name}` | {spec.unit} | {labels} | {', '.join(spec.sources)} | "
            f"{_cell(spec.help)} |"
        )
    lines += ["", "## Source mapping", ""]
    for source in SOURCES:
        rows = [
            (spec.name, native)
            for spec in CATALOGUE
            for src, native in spec.native
            if src == source
        ]
        if not rows:
            continue
        lines += [f"### {source}", "", "| canonical | native |", "| --- | --- |"]
        lines += [f"| `{name}` | {_cell(native)} |" for name, native in rows]
        lines.append("")
    lines.append(
        _NOTES.format(
            component_states=", ".join(COMPONENT_STATES),
            deployment_statuses=", ".join(DEPLOYMENT_STATUSES),
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
