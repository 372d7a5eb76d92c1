"""Azure IoT Edge built-in metrics as edgeAgent and edgeHub serve them (Prometheus text 0.0.4).

Families, label order, ``ms_telemetry`` values, six summary quantiles and .NET number formatting
follow the real 1.0.10+ capture described in tests/fixtures/FORMATS.md §1.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np

from fleetwatch.simulate import runtime as rtm

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

IOTHUB = "fleetwatch-prod.azure-devices.net"
QUANTILES = ("0.5", "0.9", "0.95", "0.99", "0.999", "0.9999")
PRIORITY = "2000000000"
Labels = list[tuple[str, str]]


def dotnet_number(x: float) -> str:
    """A double as .NET's shortest round-trip ``ToString()`` prints it: ``9.41E-05``, ``48``."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    text = repr(x)
    if "e" in text:
        mantissa, exp = text.split("e")
        mantissa = mantissa.removesuffix(".0")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mantissa}E{sign}{int(exp.lstrip('+-')):02d}"
    if abs(x) >= 1e15:  # .NET switches to exponent form one decade earlier than Python
        mantissa, exp = f"{x:.16e}".split("e")
        return f"{float(mantissa)!r}".removesuffix(".0") + f"E+{int(exp):02d}"
    return text.removesuffix(".0")


def float32(x: float) -> float:
    """The gauges are single precision inside the runtime, hence digits like 38.91724395751953."""
    return float(np.float32(x))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self, common: Labels) -> None:
        self.common = common
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Labels, value: float) -> None:
        body = ",".join(f'{k}="{escape(v)}"' for k, v in [*self.common, *labels])
        self.lines.append(f"{name}{{{body}}} {dotnet_number(value)}")

    def summary(
        self, name: str, labels: Labels, total: float, count: float, qs: list[float]
    ) -> None:
        self.sample(f"{name}_sum", labels, total)
        self.sample(f"{name}_count", labels, count)
        for q, v in zip(QUANTILES, qs, strict=True):
            self.sample(name, [*labels, ("quantile", q)], v)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _ms(module_index: int) -> tuple[str, str]:
    return ("ms_telemetry", "True" if rtm.IOTEDGE_SYSTEM[module_index] else "False")


def _spread(v: float) -> list[float]:
    """Quantiles of a recent window around a current value ``v`` (the median)."""
    return [float32(v * f) for f in (1.0, 1.18, 1.27, 1.43, 1.43, 1.43)]


def edge_agent_metrics(sim: Simulator, i: int) -> str:
    """The body edgeAgent serves on :9600/metrics for device index ``i``."""
    rt, st, dev = sim.runtime, sim.state, sim.devices[i]
    out = _Text(
        [("iothub", IOTHUB), ("edge_device", dev.id), ("instance_number", rt.agent_instance[i])]
    )
    mods = rtm.IOTEDGE_MODULES
    running = rt.down_until[i] <= sim.t
    out.family("edgeAgent_used_cpu_percent", "summary", "Percent of cpu used by all processes")
    host_cpu = st.cpu[i] * 100.0
    out.summary(
        "edgeAgent_used_cpu_percent",
        [("module_name", "host"), ("ms_telemetry", "True")],
        rt.cpu_sum[i, -1],
        rt.cpu_count[i],
        _spread(host_cpu),
    )
    for m, name in enumerate(mods):
        now = host_cpu * rtm.CPU_SHARE[m] * running[m]
        out.summary(
            "edgeAgent_used_cpu_percent",
            [("module_name", name), _ms(m)],
            float32(rt.cpu_sum[i, m]),
            rt.cpu_count[i],
            _spread(now),
        )
    total = float(sim.params.memory_bytes[i])
    out.family("edgeAgent_total_memory_bytes", "gauge", "RAM available")
    for m, name in enumerate(mods):
        out.sample("edgeAgent_total_memory_bytes", [("module_name", name), _ms(m)], total)
    out.sample(
        "edgeAgent_total_memory_bytes", [("module_name", "host"), ("ms_telemetry", "True")], total
    )
    out.family("edgeAgent_used_memory_bytes", "gauge", "Amount of RAM used by all processes")
    for m, name in enumerate(mods):
        used = math.floor(rt.module_memory[i, m])
        out.sample("edgeAgent_used_memory_bytes", [("module_name", name), _ms(m)], used)
    host_used = math.floor(st.memory_used[i])
    out.sample(
        "edgeAgent_used_memory_bytes",
        [("module_name", "host"), ("ms_telemetry", "True")],
        host_used,
    )
    _agent_counters(out, sim, i)
    _agent_disks(out, sim, i)
    _agent_modules(out, sim, i)
    _agent_tail(out, sim, i)
    return out.text()


def _agent_counters(out: _Text, sim: Simulator, i: int) -> None:
    rt = sim.runtime
    out.family(
        "edgeAgent_created_pids_total",
        "gauge",
        "The number of processes or threads the container has created",
    )
    pids = (21, 34, 57, 12)
    for m, name in enumerate(rtm.IOTEDGE_MODULES):
        restarts = rt.module_start[i, m] - 1 if m in rtm.STARTED_MODULES else 0
        out.sample(
            "edgeAgent_created_pids_total",
            [("module_name", name), _ms(m)],
            pids[m] + restarts * pids[m],
        )
    for metric, arr, text in (
        (
            "edgeAgent_total_network_in_bytes",
            rt.net_in,
            "The amount of bytes recieved from the network",
        ),
        ("edgeAgent_total_network_out_bytes", rt.net_out, "The amount of bytes sent to network"),
        (
            "edgeAgent_total_disk_read_bytes",
            rt.net_in * 0.0,
            "The amount of bytes read from the disk",
        ),
        (
            "edgeAgent_total_disk_write_bytes",
            rt.net_out * 0.5,
            "The amount of bytes written to disk",
        ),
    ):
        out.family(metric, "gauge", text)
        for m, name in enumerate(rtm.IOTEDGE_MODULES):
            out.sample(metric, [("module_name", name), _ms(m)], math.floor(arr[i, m]))


def _disk_labels(name: str) -> Labels:
    return [
        ("disk_name", name),
        ("disk_filesystem", f"/dev/{name}"),
        ("disk_filetype", "ext4"),
        ("ms_telemetry", "True"),
    ]


def _agent_disks(out: _Text, sim: Simulator, i: int) -> None:
    disks = sim.devices[i].profile.disks[:2]
    total = sim.params.disk_total[i]
    free = np.floor(total - sim.state.disk_used[i])
    out.family("edgeAgent_available_disk_space_bytes", "gauge", "Amount of space left on the disk")
    for k, (name, _) in enumerate(disks):
        out.sample("edgeAgent_available_disk_space_bytes", _disk_labels(name), free[k])
    out.family("edgeAgent_total_disk_space_bytes", "gauge", "Size of the disk")
    for k, (name, _) in enumerate(disks):
        out.sample("edgeAgent_total_disk_space_bytes", _disk_labels(name), total[k])


def _agent_modules(out: _Text, sim: Simulator, i: int) -> None:
    rt = sim.runtime
    out.family(
        "edgeAgent_total_time_expected_running_seconds",
        "gauge",
        "The amount of time the module was specified in the deployment",
    )
    for m, name in enumerate(rtm.IOTEDGE_MODULES):
        value = rt.expected_s[i, m]
        out.sample(
            "edgeAgent_total_time_expected_running_seconds", [("module_name", name), _ms(m)], value
        )
    out.family(
        "edgeAgent_total_time_running_correctly_seconds",
        "gauge",
        "The amount of time the module was specified in the deployment and was in the running "
        "state",
    )
    for m, name in enumerate(rtm.IOTEDGE_MODULES):
        value = rt.running_s[i, m]
        out.sample(
            "edgeAgent_total_time_running_correctly_seconds", [("module_name", name), _ms(m)], value
        )
    versions = list(rtm.IOTEDGE_VERSIONS)
    versions[rtm.WORKLOAD] = rt.module_version[i]
    for metric, arr in (
        ("edgeAgent_module_start_total", rt.module_start),
        ("edgeAgent_module_stop_total", rt.module_stop),
    ):
        out.family(metric, "counter", "Command sent to module")
        for m in rtm.STARTED_MODULES:
            labels = [
                ("module_name", rtm.IOTEDGE_MODULES[m]),
                ("module_version", versions[m]),
                ("ms_telemetry", "True"),
            ]
            out.sample(metric, labels, arr[i, m])


def _agent_tail(out: _Text, sim: Simulator, i: int) -> None:
    rt, dev = sim.runtime, sim.devices[i]
    starts = float(rt.module_start[i].sum())
    out.family("edgeAgent_command_latency_seconds", "summary", "Command sent to module")
    for command, count, typical in (
        ("create", 3.0, 0.1318806),
        ("start", starts, 0.2874519),
        ("wrap", starts + 1, 1.22e-05),
    ):
        out.summary(
            "edgeAgent_command_latency_seconds",
            [("command", command), ("ms_telemetry", "True")],
            round(count * typical * 1.05, 7),
            count,
            [round(typical * f, 7) for f in (1.0, 1.15, 1.15, 1.4, 1.4, 1.4)],
        )
    out.family(
        "edgeAgent_iothub_syncs_total",
        "counter",
        "The amount of times edgeAgent attempted to sync with iotHub, both successful and "
        "unsuccessful",
    )
    out.sample("edgeAgent_iothub_syncs_total", [("ms_telemetry", "True")], rt.syncs[i])
    out.family(
        "edgeAgent_unsuccessful_iothub_syncs_total",
        "counter",
        "The amount of times edgeAgent failed to sync with iotHub",
    )
    out.sample(
        "edgeAgent_unsuccessful_iothub_syncs_total", [("ms_telemetry", "True")], rt.offline_count[i]
    )
    out.family(
        "edgeAgent_deployment_time_seconds",
        "summary",
        "The amount of time it took to complete a new deployment",
    )
    # Nothing deployed in the last ten minutes: every quantile is NaN, as the real runtime shows.
    out.summary(
        "edgeAgent_deployment_time_seconds",
        [("ms_telemetry", "True")],
        4.7719382,
        2.0,
        [math.nan] * 6,
    )
    out.family("edgeAgent_host_uptime_seconds", "gauge", "How long the host has been on")
    out.sample(
        "edgeAgent_host_uptime_seconds",
        [("ms_telemetry", "True")],
        math.floor(sim.t - rt.boot_t[i]),
    )
    out.family("edgeAgent_iotedged_uptime_seconds", "gauge", "How long iotedged has been running")
    uptime = math.floor(sim.t - rt.instance_start_t[i])
    out.sample("edgeAgent_iotedged_uptime_seconds", [("ms_telemetry", "True")], uptime)
    out.family(
        "edgeagent_direct_method_invocations_count",
        "counter",
        "Number of times a built-in edgeAgent direct method is called.",
    )
    out.sample(
        "edgeagent_direct_method_invocations_count",
        [("method_name", "ping"), ("ms_telemetry", "True")],
        math.floor(uptime / 3600.0),
    )
    out.family(
        "edgeAgent_metadata",
        "gauge",
        "General metadata about the device. The value is always 0, information is encoded in "
        "the tags.",
    )
    host = {
        "OperatingSystemType": "linux",
        "Architecture": "aarch64" if dev.profile.kind == "jetson" else "x86_64",
        "Version": "1.4.27",
        "Provisioning": {
            "Type": "dps.x509",
            "DynamicReprovisioning": False,
            "AlwaysReprovisionOnStartup": True,
        },
        "ServerVersion": "20.10.25+azure-1",
        "KernelVersion": "5.10.120-tegra" if dev.profile.kind == "jetson" else "6.1.0-18-amd64",
        "OperatingSystem": "Ubuntu 20.04.6 LTS",
        "NumCpus": dev.profile.cores,
        "Virtualized": "no",
    }
    out.sample(
        "edgeAgent_metadata",
        [
            ("edge_agent_version", "1.4.27.71016343 (3f1c2a9e5b7d4c8e0a6f2b1d9c7e5a3b1f0d8c6e)"),
            ("experimental_features", '{"Enabled":false,"DisableCloudSubscriptions":false}'),
            ("host_information", json.dumps(host, separators=(",", ":"))),
            ("ms_telemetry", "True"),
        ],
        0,
    )
