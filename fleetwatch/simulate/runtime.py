"""Edge runtime state: Azure IoT Edge counters and Greengrass v2 component lifecycles.

IoT Edge counters only grow within one runtime instance; a runtime restart draws a new
``instance_number`` GUID and every counter starts again from zero, as the real edgeAgent and
edgeHub do. Greengrass components move through the nucleus lifecycle; three errors in a row make
a component BROKEN (the nucleus' MAXIMUM_CONTINUAL_ERROR) and the device UNHEALTHY.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetwatch.plugins.catalogue import COMPONENT_STATES
from fleetwatch.simulate.inventory import Device, seeded_guid

IOTEDGE_MODULES = ("edgeAgent", "edgeHub", "objectDetector", "telemetryForwarder")
IOTEDGE_SYSTEM = (True, True, False, False)  # ms_telemetry="True" on system modules
IOTEDGE_VERSIONS = ("", "", "2.3.1", "1.0.7")
WORKLOAD = 2  # objectDetector: the module/component that crashes, leaks and gets redeployed
STARTED_MODULES = (1, 2, 3)  # edgeAgent starts the others; it has no start counter of its own
MODULE_MEMORY = np.array([61e6, 148e6, 2.2e9, 42e6])  # bytes at idle load
NET_IN_BPS = np.array([60.0, 140.0, 30.0, 10.0])
NET_OUT_BPS = np.array([40.0, 220.0, 5.0, 170.0])
UPSTREAM_MSG_PER_S = 1.2  # telemetryForwarder -> IoT Hub, at full load
DETECTIONS_MSG_PER_S = 4.0  # objectDetector -> telemetryForwarder, at full load
RESTART_BACKOFF_S = 30.0
CPU_SHARE = np.array([0.01, 0.04, 0.85, 0.02])  # of the host's CPU, per module

GG_COMPONENTS = (
    ("com.fleetwatch.ObjectDetector", "2.3.1", True, "RUNNING"),
    ("com.fleetwatch.TelemetryUploader", "1.0.7", True, "RUNNING"),
    ("com.fleetwatch.ModelFetcher", "1.2.0", True, "FINISHED"),
    ("aws.greengrass.Nucleus", "2.14.3", False, "FINISHED"),
    ("aws.greengrass.telemetry.NucleusEmitter", "1.0.12", False, "RUNNING"),
    ("DeploymentService", None, False, "RUNNING"),
)
STATE_INDEX = {s: i for i, s in enumerate(COMPONENT_STATES)}
RUNNING, ERRORED, BROKEN = STATE_INDEX["RUNNING"], STATE_INDEX["ERRORED"], STATE_INDEX["BROKEN"]
DEPLOYMENT_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")
MAX_CONTINUAL_ERRORS = 3


@dataclass
class RuntimeState:
    """Per-device runtime arrays; rows of devices on the other runtime stay at zero."""

    is_iotedge: np.ndarray
    is_greengrass: np.ndarray
    agent_instance: list[str]
    hub_instance: list[str]
    instance_start_t: np.ndarray
    boot_t: np.ndarray
    module_start: np.ndarray  # (n, M)
    module_stop: np.ndarray
    expected_s: np.ndarray
    running_s: np.ndarray
    down_until: np.ndarray  # (n, M) module not running before this time
    module_version: list[str]  # objectDetector's version per device
    net_in: np.ndarray
    net_out: np.ndarray
    module_memory: np.ndarray
    cpu_sum: np.ndarray  # (n, M+1): modules then host, in percent
    cpu_count: np.ndarray
    detections: np.ndarray  # messages objectDetector -> telemetryForwarder
    upstream_in: np.ndarray  # messages telemetryForwarder produced for upstream
    upstream_sent: np.ndarray
    queue: np.ndarray  # edgeHub backlog toward IoT Hub
    offline_count: np.ndarray
    offline_sum_s: np.ndarray
    offline_since: np.ndarray  # nan while online
    uplink_down: np.ndarray
    syncs: np.ndarray
    crash_every_s: np.ndarray  # 0 = no crash loop
    next_crash_t: np.ndarray
    comp_state: np.ndarray  # (n, C) index into COMPONENT_STATES
    comp_errors: np.ndarray
    comp_version: list[str]
    deployment_id: list[str]
    deployment_status: np.ndarray  # index into DEPLOYMENT_STATUSES
    sequence: np.ndarray
    changed: list[set[int]]  # components whose status changed since the last publish
    label_epoch: int = 0  # bumped when a label value (a deployment id) changes


def initial_runtime(devices: list[Device], t0: float, rng: np.random.Generator) -> RuntimeState:
    n, m, c = len(devices), len(IOTEDGE_MODULES), len(GG_COMPONENTS)
    is_iotedge = np.array([d.runtime == "iotedge" for d in devices])
    uptime = rng.uniform(3600.0, 30 * 86400.0, n)
    instance_age = np.minimum(uptime, rng.uniform(600.0, 3 * 86400.0, n))
    comp_state = np.tile([STATE_INDEX[s] for *_, s in GG_COMPONENTS], (n, 1))
    rt = RuntimeState(
        is_iotedge=is_iotedge,
        is_greengrass=~is_iotedge,
        agent_instance=[seeded_guid(rng) for _ in range(n)],
        hub_instance=[seeded_guid(rng) for _ in range(n)],
        instance_start_t=t0 - instance_age,
        boot_t=t0 - uptime,
        module_start=np.zeros((n, m)),
        module_stop=np.zeros((n, m)),
        expected_s=np.zeros((n, m)),
        running_s=np.zeros((n, m)),
        down_until=np.zeros((n, m)),
        module_version=[IOTEDGE_VERSIONS[WORKLOAD]] * n,
        net_in=np.zeros((n, m)),
        net_out=np.zeros((n, m)),
        module_memory=np.tile(MODULE_MEMORY, (n, 1)),
        cpu_sum=np.zeros((n, m + 1)),
        cpu_count=np.zeros(n),
        detections=np.zeros(n),
        upstream_in=np.zeros(n),
        upstream_sent=np.zeros(n),
        queue=np.zeros(n),
        offline_count=np.zeros(n),
        offline_sum_s=np.zeros(n),
        offline_since=np.full(n, np.nan),
        uplink_down=np.zeros(n, dtype=bool),
        syncs=np.zeros(n),
        crash_every_s=np.zeros(n),
        next_crash_t=np.full(n, np.inf),
        comp_state=comp_state,
        comp_errors=np.zeros((n, c), dtype=np.int64),
        comp_version=[GG_COMPONENTS[0][1]] * n,
        deployment_id=[seeded_guid(rng) for _ in range(n)],
        deployment_status=np.full(n, DEPLOYMENT_STATUSES.index("SUCCEEDED")),
        sequence=rng.integers(100, 5000, n),
        changed=[set() for _ in range(n)],
    )
    _fresh_instance(rt, np.arange(n), instance_age, load=0.4)
    return rt


def _fresh_instance(rt: RuntimeState, idx: np.ndarray, age: np.ndarray, load: float) -> None:
    """Counters of a runtime instance that has been up ``age`` seconds without incident."""
    for arr in (rt.module_start, rt.module_stop, rt.net_in, rt.net_out, rt.cpu_sum):
        arr[idx] = 0.0
    rt.module_start[np.ix_(idx, np.asarray(STARTED_MODULES))] = 1.0
    rt.expected_s[idx] = age[:, None]
    rt.running_s[idx] = age[:, None]
    rt.net_in[idx] = NET_IN_BPS * age[:, None]
    rt.net_out[idx] = NET_OUT_BPS * age[:, None]
    rt.cpu_count[idx] = np.floor(age / 10.0)
    rt.cpu_sum[idx] = rt.cpu_count[idx, None] * load * 100.0 * 0.05
    rt.cpu_sum[idx, -1] = rt.cpu_count[idx] * load * 100.0
    rt.detections[idx] = np.floor(DETECTIONS_MSG_PER_S * load * age)
    rt.upstream_in[idx] = np.floor(UPSTREAM_MSG_PER_S * load * age)
    rt.upstream_sent[idx] = rt.upstream_in[idx]
    rt.queue[idx] = 0.0
    rt.offline_count[idx] = 0.0
    rt.offline_sum_s[idx] = 0.0
    rt.syncs[idx] = np.floor(age / 3600.0) + 1


def restart_runtime(rt: RuntimeState, i: int, t: float, rng: np.random.Generator) -> None:
    """Restart the IoT Edge runtime of device ``i``: new instance numbers, counters from zero."""
    rt.agent_instance[i] = seeded_guid(rng)
    rt.hub_instance[i] = seeded_guid(rng)
    rt.instance_start_t[i] = t
    _fresh_instance(rt, np.array([i]), np.array([0.0]), load=0.0)
    rt.down_until[i] = 0.0
    if rt.uplink_down[i]:
        rt.offline_count[i] = 1.0
        rt.offline_since[i] = t


def crash_workload(rt: RuntimeState, i: int, t: float) -> None:
    """The workload process of device ``i`` dies; the runtime restarts it after a backoff."""
    if rt.is_iotedge[i]:
        rt.down_until[i, WORKLOAD] = t + RESTART_BACKOFF_S
        rt.module_start[i, WORKLOAD] += 1.0  # edgeAgent asks Docker to start it again
        return
    state = rt.comp_state[i, 0]
    if state == BROKEN:
        return
    rt.comp_errors[i, 0] += 1
    broken = rt.comp_errors[i, 0] >= MAX_CONTINUAL_ERRORS
    rt.comp_state[i, 0] = BROKEN if broken else ERRORED
    rt.changed[i].add(0)
    if broken and rt.deployment_status[i] == DEPLOYMENT_STATUSES.index("IN_PROGRESS"):
        rt.deployment_status[i] = DEPLOYMENT_STATUSES.index("FAILED")


def start_deployment(rt: RuntimeState, i: int, version: str, rng: np.random.Generator) -> None:
    """A new workload version arrives (IoT Edge module version / Greengrass deployment)."""
    rt.deployment_id[i] = seeded_guid(rng)
    rt.label_epoch += 1
    if rt.is_iotedge[i]:
        rt.module_version[i] = version
        rt.module_stop[i, WORKLOAD] += 1.0
        rt.module_start[i, WORKLOAD] += 1.0
        return
    rt.comp_version[i] = version
    rt.deployment_status[i] = DEPLOYMENT_STATUSES.index("IN_PROGRESS")
    rt.comp_state[i, 0] = STATE_INDEX["STARTING"]
    rt.comp_errors[i, 0] = 0
    rt.changed[i].add(0)


def step_runtime(rt: RuntimeState, cpu: np.ndarray, t: float, dt: float) -> None:
    """Advance counters by ``dt``; ``cpu`` is each device's load 0..1 over the step."""
    # Lifecycle first: a component that errored or started last tick is running by now.
    recovering = np.nonzero(rt.is_greengrass & (rt.comp_state[:, 0] == ERRORED))[0]
    for i in recovering:  # the nucleus restarts an errored component on the next cycle
        rt.comp_state[i, 0] = RUNNING
        rt.changed[i].add(0)
    starting = np.nonzero(rt.is_greengrass & (rt.comp_state[:, 0] == STATE_INDEX["STARTING"]))[0]
    for i in starting:
        rt.comp_state[i, 0] = RUNNING
        rt.changed[i].add(0)
        if rt.crash_every_s[i] == 0:
            rt.deployment_status[i] = DEPLOYMENT_STATUSES.index("SUCCEEDED")
    due = np.nonzero(rt.next_crash_t <= t)[0]
    for i in due:
        crash_workload(rt, int(i), t)
        rt.next_crash_t[i] = t + rt.crash_every_s[i] if rt.crash_every_s[i] > 0 else np.inf
    running = rt.down_until <= t
    rt.expected_s += dt
    rt.running_s += dt * running
    load = cpu[:, None]
    rt.net_in += NET_IN_BPS * dt * (0.5 + load) * running
    out = NET_OUT_BPS * dt * (0.5 + load) * running
    out[:, 1] *= ~rt.uplink_down  # edgeHub sends nothing upstream while offline
    rt.net_out += out
    rt.module_memory = MODULE_MEMORY * (0.8 + 0.4 * load) * running
    work = np.where(running[:, WORKLOAD], cpu, 0.0)
    rt.detections += np.floor(DETECTIONS_MSG_PER_S * work * dt)
    produced = np.floor(UPSTREAM_MSG_PER_S * (0.3 + work) * dt)
    rt.upstream_in += produced
    capacity = np.where(rt.uplink_down, 0.0, 50.0 * dt)
    sent = np.minimum(rt.queue + produced, capacity)
    rt.upstream_sent += sent
    rt.queue = rt.queue + produced - sent
    rt.cpu_count += 1.0
    rt.cpu_sum[:, :-1] += cpu[:, None] * 100.0 * CPU_SHARE * running
    rt.cpu_sum[:, -1] += cpu * 100.0
    rt.syncs += np.floor((t - rt.instance_start_t) / 3600.0) > np.floor(
        (t - dt - rt.instance_start_t) / 3600.0
    )


def set_uplink(rt: RuntimeState, i: int, down: bool, t: float) -> None:
    """Take the uplink of device ``i`` down or bring it back (edgeHub offline accounting)."""
    if down and not rt.uplink_down[i]:
        rt.offline_count[i] += 1.0
        rt.offline_since[i] = t
    elif not down and rt.uplink_down[i]:
        rt.offline_sum_s[i] += t - rt.offline_since[i]
        rt.offline_since[i] = np.nan
    rt.uplink_down[i] = down


def device_healthy(rt: RuntimeState) -> np.ndarray:
    """Greengrass: UNHEALTHY when any component is BROKEN (ERRORED alone is still healthy)."""
    return ~(rt.comp_state == BROKEN).any(axis=1)
