"""``fleetwatch demo``: a simulated fleet run through fleetwatch's pipeline in one process.

The run is a list of :class:`Stage` objects. Each tick the simulator stage advances the fleet and
puts the tick's canonical samples on the :class:`DemoRun`; every later stage then sees them
(store them, register devices, serve formats, publish MQTT, …). Parts of fleetwatch that come
later (analysis, alerts, actions, dashboard) join by appending a stage to :func:`default_stages`
and filling their key of the report.

Ctrl-C finishes the current tick, collects every stage's report, stops the stages and writes the
report; the command then exits 0.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetwatch.settings import Settings
from fleetwatch.simulate import Pacer, SimConfig, Simulator
from fleetwatch.simulate.faults import iso
from fleetwatch.simulate.series import SampleBatch
from fleetwatch.telemetry import Sample


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 50
    sites: int = 3
    faults: int = 4
    speed: float | None = 60.0  # None: as fast as possible
    duration_s: float | None = None  # wall seconds; None: until Ctrl-C
    seed: int = 0
    step_s: float = 30.0  # a realistic reporting interval; 10 s for finer series
    dashboard: bool = True
    report: Path | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    sysfs: bool = False  # mirror Jetson/Coral sysfs trees to files (costly on slow disks)
    via_agents: bool = False  # ship through one gateway agent per site and the ingest API
    sysfs_every_s: float = 300.0  # simulated seconds between sysfs/tegrastats refreshes


@dataclass
class DemoRun:
    """What stages share: the simulator, this tick's samples, counters, notes and the report."""

    options: DemoOptions
    settings: Settings
    sim: Simulator
    stop: threading.Event = field(default_factory=threading.Event)
    batch: SampleBatch | None = None
    samples: list[Sample] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # new since the display last showed them
    info: dict[str, str] = field(default_factory=dict)  # one line per stage for the display
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time spent per stage

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.events.append(text)


class Stage:
    """One step of the demo pipeline. Override what you need; all hooks are optional.

    ``report`` is called after the last tick and before ``stop``, so a stage can still query
    what it holds; its dict is merged into the report.
    """

    name = "stage"

    def start(self, run: DemoRun) -> None:
        return None

    def tick(self, run: DemoRun) -> None:
        return None

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {}

    def stop(self, run: DemoRun) -> None:
        return None


class SimulateStage(Stage):
    name = "simulate"

    def tick(self, run: DemoRun) -> None:
        crossed_before = {id(t) for t in run.sim.ground_truth() if t.crossed_at is not None}
        run.sim.step()
        run.batch = run.sim.batch()
        run.samples = run.batch.samples()
        run.count("samples_generated", len(run.samples))
        for t in run.sim.ground_truth():
            if t.crossed_at is not None and id(t) not in crossed_before:
                run.events.append(
                    f"{t.kind} on {t.device}: threshold {t.threshold:g} crossed at "
                    f"{iso(t.crossed_at)} ({(t.crossed_at - t.start) / 60:.0f} min after start)"
                )


DERIVED_MEASUREMENTS = ("fleetwatch_anomaly_score", "fleetwatch_device_risk_ratio")


class StoreStage(Stage):
    """Writes every tick's samples to the metrics store the settings name (SQLite by default)."""

    name = "store"

    def __init__(self) -> None:
        self.store: Any = None
        self.validated: list[dict[str, str]] | None = None  # the label table last validated

    def start(self, run: DemoRun) -> None:
        from fleetwatch.store import open_store

        run.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(run.settings)
        run.info["store"] = f"{run.settings.store.backend} {run.settings.metrics_sqlite_path}"

    def tick(self, run: DemoRun) -> None:
        labels = run.batch.table.labels() if run.batch is not None else None
        if labels is not None and labels is self.validated:
            # Same series as a tick already validated: names and labels are fixed per series
            # and values are finite by construction, so skip the per-sample checks.
            run.count("samples_stored", self.store.write_valid(run.samples))
            return
        result = self.store.write(run.samples)
        run.count("samples_stored", result.written)
        run.count("samples_rejected", len(result.errors))
        if not result.errors:
            self.validated = labels

    def report(self, run: DemoRun) -> dict[str, Any]:
        # The analysis also stores its scores as measurements; they are not telemetry.
        derived = sum(self.store.count(m) for m in DERIVED_MEASUREMENTS)
        return {
            "samples_stored": self.store.count() - derived,
            "analysis_points_stored": derived,
            "samples_rejected": run.counters.get("samples_rejected", 0),
            "store": {"backend": run.settings.store.backend},
        }

    def stop(self, run: DemoRun) -> None:
        if self.store is not None:
            self.store.close()


class RegistryStage(Stage):
    """Registers sites and devices in the state DB (migrating the embedded SQLite file first)."""

    name = "registry"

    def start(self, run: DemoRun) -> None:
        try:
            register_inventory(run.settings, run.sim)
        except Exception as exc:  # the demo still shows telemetry without a state DB
            run.note(f"state DB registration skipped: {type(exc).__name__}: {exc}")
            return
        run.info["registry"] = f"{len(run.sim.devices)} devices registered in the state DB"
        run.count("devices_registered", len(run.sim.devices))


def register_inventory(settings: Settings, sim: Simulator) -> int:
    """Upsert the simulator's sites and devices into the state DB named by the settings."""
    from fleetwatch.db import make_engine, session_factory, session_scope
    from fleetwatch.db.migrations import upgrade
    from fleetwatch.fleet import service
    from fleetwatch.fleet.schemas import DeviceIn, SiteIn

    url = settings.database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(url)  # the demo owns this embedded file; servers migrate with `fleetwatch db`
    engine = make_engine(url)
    try:
        with session_scope(session_factory(engine)) as db:
            for site in sim.sites:
                service.upsert_site(
                    db=db,
                    site=SiteIn(
                        id=site.name,
                        name=site.name,
                        timezone=site.timezone,
                        region=None,
                        cluster=None,
                    ),
                )
            devices = [
                DeviceIn(
                    id=d.id,
                    site_id=d.site,
                    hardware_model=d.hardware_model,
                    accelerator=d.accelerator,
                    firmware=d.firmware,
                    runtime=d.runtime,
                    node_name=d.node_name,
                    labels={"simulated": True},
                )
                for d in sim.devices
            ]
            return service.upsert_devices(db=db, devices=devices)
    finally:
        engine.dispose()


class ScrapeEndpointStage(Stage):
    """Serves the IoT Edge devices' edgeAgent/edgeHub metrics over loopback HTTP."""

    name = "iotedge_http"

    def __init__(self) -> None:
        self.server: Any = None

    def start(self, run: DemoRun) -> None:
        from fleetwatch.simulate.transports import MetricsServer

        self.server = MetricsServer(run.sim).start()
        n = sum(1 for d in run.sim.devices if d.runtime == "iotedge")
        run.info["iotedge_http"] = (
            f"{n} IoT Edge devices at http://{self.server.host}:{self.server.port}"
            "/<device>/edgeAgent/metrics"
        )

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {"iotedge_http": {"port": self.server.port, "requests": self.server.requests}}

    def stop(self, run: DemoRun) -> None:
        if self.server is not None:
            self.server.stop()


class MqttStage(Stage):
    """Publishes Greengrass fleet status and nucleus telemetry; skipped without a broker."""

    name = "greengrass_mqtt"

    def __init__(self) -> None:
        self.publisher: Any = None

    def start(self, run: DemoRun) -> None:
        from fleetwatch.simulate.transports import GreengrassPublisher

        o = run.options
        publisher = GreengrassPublisher(run.sim, o.mqtt_host, o.mqtt_port)
        if not publisher.connect(timeout_s=2.0):
            run.note(
                f"MQTT broker {o.mqtt_host}:{o.mqtt_port} unreachable: "
                "Greengrass MQTT transport skipped"
            )
            return
        self.publisher = publisher
        run.info["greengrass_mqtt"] = f"Greengrass telemetry to mqtt://{o.mqtt_host}:{o.mqtt_port}"

    def tick(self, run: DemoRun) -> None:
        if self.publisher is not None:
            run.count("mqtt_messages", self.publisher.publish_tick())

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {
            "greengrass_mqtt": {
                "connected": self.publisher is not None,
                "messages": run.counters.get("mqtt_messages", 0),
            }
        }

    def stop(self, run: DemoRun) -> None:
        if self.publisher is not None:
            self.publisher.close()


class SysfsStage(Stage):
    """Keeps Jetson/Coral sysfs trees and tegrastats logs under ``<data_dir>/simulated/``.

    Files are written by a background thread from a snapshot, so a slow disk delays the files,
    not the simulation; a refresh that is due while the previous one is still writing is skipped.
    """

    name = "sysfs"

    def __init__(self) -> None:
        self.mirror: Any = None
        self.last_t = -1e18
        self.writer: threading.Thread | None = None
        self.skipped = 0

    def start(self, run: DemoRun) -> None:
        from fleetwatch.simulate.transports import SysfsMirror

        root = run.settings.data_dir / "simulated"
        self.mirror = SysfsMirror(run.sim, root)
        run.info["sysfs"] = f"sysfs trees and tegrastats logs under {root}/<device>/"

    def tick(self, run: DemoRun) -> None:
        if run.sim.t - self.last_t < run.options.sysfs_every_s:
            return
        if self.writer is not None and self.writer.is_alive():
            self.skipped += 1
            return
        self.last_t = run.sim.t
        snapshot = self.mirror.snapshot()
        self.writer = threading.Thread(
            target=self.mirror.write, args=(snapshot,), name="sim-sysfs", daemon=True
        )
        self.writer.start()

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {
            "sysfs": {
                "root": str(self.mirror.root),
                "writes": self.mirror.writer.writes,
                "refreshes_skipped": self.skipped,
            }
        }

    def stop(self, run: DemoRun) -> None:
        if self.writer is not None:
            self.writer.join(timeout=5)


class PeriodicStage(Stage):
    """Runs a domain's demo stage (``start()``, ``tick(now)``, ``report()``, ``stop()``) every
    ``every_s`` simulated seconds, with the simulated time as ``now``."""

    def __init__(
        self, name: str, factory: Callable[[DemoRun], Any], every_s: float, report_key: str
    ) -> None:
        self.name = name
        self.factory = factory
        self.every_s = every_s
        self.report_key = report_key
        self.inner: Any = None
        self.last: float | None = None
        self.totals: dict[str, int] = {}

    def start(self, run: DemoRun) -> None:
        self.inner = self.factory(run)
        self.inner.start()

    def tick(self, run: DemoRun) -> None:
        if self.last is not None and run.sim.t - self.last < self.every_s:
            return
        self.last = run.sim.t
        counts = self.inner.tick(datetime.fromtimestamp(run.sim.t, tz=UTC)) or {}
        for key, value in counts.items():
            self.totals[key] = self.totals.get(key, 0) + int(value)
        run.info[self.name] = f"{self.name}: " + ", ".join(
            f"{v} {k}" for k, v in sorted(self.totals.items()) if not k.startswith("_")
        )
        receiver = getattr(self.inner, "receiver", None)
        if receiver is not None:  # show each notification once, as it arrives
            new = len(receiver.received) - self.totals.get("_shown", 0)
            if new > 0:
                run.events.extend(self.inner.summary_lines(limit=new))
                self.totals["_shown"] = len(receiver.received)

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {self.report_key: self.inner.report()} if self.inner is not None else {}

    def stop(self, run: DemoRun) -> None:
        if self.inner is not None:
            self.inner.stop()


def _sessions(run: DemoRun) -> Any:
    from fleetwatch.db import make_engine, session_factory

    return session_factory(make_engine(run.settings.database_url))


def _alerting(run: DemoRun) -> Any:
    from fleetwatch.alerting.demo import AlertingStage
    from fleetwatch.store import open_store

    return AlertingStage(run.settings, _sessions(run), open_store(run.settings))


def _actions(run: DemoRun) -> Any:
    from fleetwatch.actions.demo import ActionsStage

    return ActionsStage(run.settings, _sessions(run), ground_truth=run.sim.ground_truth)


def default_stages(options: DemoOptions) -> list[Stage]:
    from fleetwatch.analysis.demo import AnalysisStage
    from fleetwatch.demo_serve import ServeStage

    cycle_s = 300.0  # one analysis cycle per five simulated minutes
    serve = ServeStage(dashboard=options.dashboard)
    stages: list[Stage] = [SimulateStage(), RegistryStage(), serve]
    if options.via_agents:
        from fleetwatch.demo_agents import AgentStage

        stages.append(AgentStage(lambda: serve.api_base))
    stages += [StoreStage(), ScrapeEndpointStage(), MqttStage()]
    if options.sysfs:
        stages.append(SysfsStage())
    stages += [
        AnalysisStage(cycle_s),
        PeriodicStage("alerting", _alerting, cycle_s, "alerts"),
        PeriodicStage("actions", _actions, cycle_s, "actions"),
    ]
    return stages


Display = Callable[[DemoRun, Pacer, bool], None]


def run_demo(
    options: DemoOptions,
    settings: Settings,
    *,
    stages: list[Stage] | None = None,
    display: Display | None = None,
) -> dict[str, Any]:
    """Run the demo until ``duration_s`` wall seconds pass or SIGINT; return the report.

    The duration counts from this call (start-up included), so the demo ends on time.
    """
    entered = time.monotonic()
    sim = Simulator(
        SimConfig(
            devices=options.devices,
            sites=options.sites,
            seed=options.seed,
            start=_demo_start(),
            step_s=options.step_s,
            random_faults=options.faults,
            fault_window_s=_fault_window(options),
        )
    )
    run = DemoRun(options=options, settings=settings, sim=sim)
    stages = default_stages(options) if stages is None else stages
    pacer = Pacer(options.step_s, options.speed)
    restore = _catch_sigint(run.stop)
    try:
        for stage in stages:
            stage.start(run)
        pacer.start()
        tick = 0
        while not run.stop.is_set():
            if options.duration_s is not None and time.monotonic() - entered >= options.duration_s:
                break
            for stage in stages:
                began = time.perf_counter()
                stage.tick(run)
                spent = run.stage_seconds.get(stage.name, 0.0) + time.perf_counter() - began
                run.stage_seconds[stage.name] = spent
            tick += 1
            if display is not None:
                display(run, pacer, False)
            if not _wait(pacer, tick, run.stop, entered, options.duration_s):
                break
        report = build_report(run, pacer, stages)
        report["wall_duration_s"] = round(time.monotonic() - entered, 3)
    finally:
        for stage in reversed(stages):
            stage.stop(run)
        restore()
    if display is not None:
        display(run, pacer, True)
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _wait(
    pacer: Pacer, tick: int, stop: threading.Event, entered: float, duration_s: float | None
) -> bool:
    """Sleep until the next tick is due, but not past the end of the run."""
    if duration_s is not None:
        left = entered + duration_s - time.monotonic()
        if pacer.due(tick) - pacer.wall_elapsed_s > left:
            return not stop.wait(max(left, 0.0))
    return pacer.wait(tick, stop)


def _demo_start() -> Any:
    from datetime import UTC, datetime

    now = datetime.now(tz=UTC)
    return now.replace(second=0, microsecond=0)


def _fault_window(options: DemoOptions) -> float:
    """Faults start early in the run so they show within its simulated span."""
    if options.duration_s is not None and options.speed is not None:
        return max(options.duration_s * options.speed, 600.0)
    return 4 * 3600.0


def _catch_sigint(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def build_report(run: DemoRun, pacer: Pacer, stages: list[Stage]) -> dict[str, Any]:
    """The demo report; later parts fill ``alerts``, ``actions`` and ``detection``."""
    sim = run.sim
    by = _group_counts(sim)
    report: dict[str, Any] = {
        "devices": {"count": len(sim.devices), "per_cohort": sim.cohorts(), **by},
        "seed": run.options.seed,
        "speed": run.options.speed,
        "step_s": run.options.step_s,
        "ticks": sim.ticks,
        "samples_generated": run.counters.get("samples_generated", 0),
        "samples_stored": None,
        "faults": [t.to_dict() for t in sim.ground_truth()],
        "wall_duration_s": round(pacer.wall_elapsed_s, 3),
        "lag_behind_speed_s": round(pacer.lag_s(sim.ticks), 3),
        "simulated_duration_s": sim.elapsed_s,
        "simulated_start": iso(sim.config.start.timestamp()),
        "simulated_end": iso(sim.t),
        "alerts": [],
        "actions": [],
        "detection": {},
        "notes": list(run.notes),
        "stage_seconds": {k: round(v, 3) for k, v in run.stage_seconds.items()},
        "generated_at": iso(time.time()),
    }
    for stage in stages:
        report.update(stage.report(run))
    return report


def _group_counts(sim: Simulator) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"per_hardware": {}, "per_runtime": {}, "per_site": {}}
    for d in sim.devices:
        for key, value in (
            ("per_hardware", d.hardware_model),
            ("per_runtime", d.runtime),
            ("per_site", d.site),
        ):
            out[key][value] = out[key].get(value, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}
