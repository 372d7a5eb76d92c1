"""``fleetwatch agent``: run the gateway collector agent until SIGTERM/SIGINT."""

from __future__ import annotations

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
    from fleetwatch.agent.__main__ import serve

    if config is not None:
        state.config_file = config
    code = serve(settings(), once=once)
    if code:
        raise typer.Exit(code)
