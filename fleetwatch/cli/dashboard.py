"""``fleetwatch dashboard``: serve the Dash dashboard, a client of the REST API."""

from __future__ import annotations

import typer

from fleetwatch.cli.common import settings


def dashboard(
    host: str | None = typer.Option(None, help="bind address (default: dashboard.host)"),
    port: int | None = typer.Option(None, help="port (default: dashboard.port)"),
    api_url: str | None = typer.Option(
        None, "--api-url", help="REST API to read (default: dashboard.api_url)"
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        help="API bearer token with read, alerts and actions scopes (default: "
        "dashboard.api_token; prefer FLEETWATCH_DASHBOARD__API_TOKEN, which `ps` does not show)",
    ),
    refresh: float | None = typer.Option(
        None,
        "--refresh",
        min=1.0,
        help="auto-refresh period in seconds (default: dashboard.refresh_s)",
    ),
) -> None:
    """Serve the dashboard (fleet overview, devices, alerts, actions) over the REST API."""
    from dashboards.server import DashboardServer

    config = settings().dashboard
    secret = token or (config.api_token.get_secret_value() if config.api_token else None)
    server = DashboardServer(
        api_url or config.api_url,
        secret,
        host=host or config.host,
        port=port or config.port,
        refresh_s=refresh or config.refresh_s,
    )
    typer.echo(f"fleetwatch dashboard on {server.url}, reading {api_url or config.api_url}")
    if secret is None:
        typer.echo("no API token given: the API must run with --insecure-local", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("dashboard stopped")
