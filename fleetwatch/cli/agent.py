"""``fleetwatch agent``: run the gateway collector agent until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer

from fleetwatch.cli.common import settings, state


def agent(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML settings file (same as `fleetwatch --config`)."
    ),
    once: bool = typer.Option(False, help="collect every instance once, ship, print stats, exit"),
) -> None:
    """Run the gateway agent: collectors, durable disk buffer, bandwidth-capped uplink."""
    import json

    from fleetwatch.agent.runner import Agent, AgentConfigError
    from fleetwatch.plugins import PluginError

    if config is not None:
        state.config_file = config
    conf = settings()
    logging.basicConfig(
        level=conf.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        runner = Agent(
            conf.agent,
            buffer_dir=conf.agent.buffer_dir or conf.data_dir / "agent",
            metrics_port=conf.metrics.port,
        )
    except (AgentConfigError, PluginError) as exc:
        typer.echo(f"fleetwatch agent: {exc}", err=True)
        raise typer.Exit(2) from None
    if once:
        typer.echo(json.dumps(runner.run_once(), sort_keys=True))
        runner.stop()
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    port = runner.status.port if runner.status else None
    logging.getLogger("fleetwatch.agent").info(
        "agent running: %d collectors, uplink %s, status port %s",
        len(runner.collectors),
        conf.agent.uplink,
        port,
    )
    stop.wait()
    runner.stop()
