"""``fleetwatch demo``: run a simulated fleet through fleetwatch on embedded defaults."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from fleetwatch.cli.common import settings as load_settings
from fleetwatch.demo import DemoOptions, DemoRun, run_demo
from fleetwatch.simulate import Pacer

PLAIN_EVERY_S = 5.0


class LiveSummary:
    """A few rewritten lines on a terminal; a plain progress line every few seconds otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.last_plain = -1e9
        self.shown_notes = 0

    def __call__(self, run: DemoRun, pacer: Pacer, final: bool) -> None:
        for event in run.events:
            self.console.print(f"  • {event}")
        run.events.clear()
        if self.console.is_terminal:
            if self.live is None:
                self.live = Live(console=self.console, refresh_per_second=4, transient=False)
                self.live.start()
            self.live.update(Group(*[Text(line) for line in summary_lines(run, pacer)]))
            if final:
                self.live.stop()
            return
        if final or pacer.wall_elapsed_s - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = pacer.wall_elapsed_s
            self.console.print(" | ".join(summary_lines(run, pacer)[:3]))


def summary_lines(run: DemoRun, pacer: Pacer) -> list[str]:
    sim = run.sim
    c = run.counters
    truths = sim.ground_truth()
    started = sum(1 for t in truths if t.start <= sim.t)
    crossed = sum(1 for t in truths if t.crossed_at is not None)
    sim_now = datetime.fromtimestamp(sim.t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"sim {sim_now} UTC  +{_span(sim.elapsed_s)} simulated"
        f" in {pacer.wall_elapsed_s:.0f}s wall"
        f" (x{run.options.speed or 'max'}), tick {sim.ticks}" + _lag(pacer, sim.ticks),
        f"samples {c.get('samples_generated', 0):,} generated,"
        f" {c.get('samples_stored', 0):,} stored ({c.get('samples_rejected', 0)} rejected)",
        f"faults {len(truths)} injected, {started} started, {crossed} past their failure threshold",
    ]
    lines += [f"{name}: {text}" for name, text in run.info.items()]
    return lines


def _lag(pacer: Pacer, ticks: int) -> str:
    late = pacer.lag_s(ticks)
    return f", {late:.1f}s behind the requested speed" if late > 1.0 else ""


def _span(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s"


def demo(
    devices: int = typer.Option(50, "--devices", min=1, help="simulated devices"),
    sites: int = typer.Option(3, "--sites", min=1, help="sites (time zones, climates)"),
    faults: int = typer.Option(4, "--faults", min=0, help="faults drawn at random from the seed"),
    speed: float = typer.Option(
        60.0, "--speed", min=0.0, help="simulated seconds per wall second; 0 = as fast as possible"
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0.0, help="wall seconds to run (default: until Ctrl-C)"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed: same seed, same fleet and faults"),
    step: float = typer.Option(30.0, "--step", min=0.1, help="simulated seconds per tick"),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="start the dashboard"),
    sysfs: bool = typer.Option(
        False, "--sysfs/--no-sysfs", help="also write Jetson/Coral sysfs trees and tegrastats logs"
    ),
    report: Path | None = typer.Option(None, "--report", help="write a JSON report here"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="embedded databases and files"),
    mqtt_host: str = typer.Option("127.0.0.1", "--mqtt-host", help="MQTT broker for Greengrass"),
    mqtt_port: int = typer.Option(1883, "--mqtt-port", help="MQTT broker port"),
    via_agents: bool = typer.Option(
        False,
        "--via-agents/--direct",
        help="ship each site's telemetry through a gateway agent (disk buffer, dense encoding) "
        "and the ingest API, instead of writing it to the store directly",
    ),
) -> None:
    """Simulate a fleet and run it through fleetwatch in one process (Ctrl-C stops cleanly)."""
    overrides: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    settings = load_settings(**overrides)
    options = DemoOptions(
        devices=devices,
        sites=sites,
        faults=faults,
        speed=speed or None,
        duration_s=duration,
        seed=seed,
        step_s=step,
        dashboard=dashboard,
        sysfs=sysfs,
        report=report,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        via_agents=via_agents,
    )
    console = Console(highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True  # plain lines for logs and pipes, never re-wrapped
    console.print(
        f"fleetwatch demo: {devices} devices on {sites} sites, {faults} faults, seed {seed}, "
        f"x{speed or 'max'}, data in {settings.data_dir}"
        + ("" if duration is not None else " — Ctrl-C to stop")
    )
    started = time.monotonic()
    result = run_demo(options, settings, display=LiveSummary(console))
    console.print(
        f"done in {time.monotonic() - started:.1f}s: {result['samples_generated']:,} samples "
        f"generated, {result.get('samples_stored')} stored, {len(result['faults'])} faults"
    )
    for fault in result["faults"]:
        crossed = fault["crossed_at"] or "not within the run"
        console.print(f"  {fault['kind']:<18} {fault['device']:<22} threshold crossed: {crossed}")
    if report is not None:
        console.print(f"report: {report}")
