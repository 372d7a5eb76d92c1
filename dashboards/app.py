"""The Dash application: a shell (navigation, theme, refresh clock) and four pages.

``create_dash_app(api_url, token)`` builds it; ``fleetwatch dashboard`` serves it. Every page
reads the REST API through :class:`dashboards.client.FleetwatchClient`; none touches a database.

Where the user is survives a refresh: figures keep zoom and legend through ``uirevision``,
filters live in the URL query string (so a URL can be shared) and the theme in local storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import dash
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import theme as th
from dashboards import ui
from dashboards.client import FleetwatchClient
from dashboards.pages import actions, alerts, device, overview

ASSETS = Path(__file__).resolve().parent / "assets"

NAV = (("Fleet", "/"), ("Alerts", "/alerts"), ("Actions", "/actions"))


def create_dash_app(
    api_url: str,
    token: str | None = None,
    *,
    refresh_s: float = 10.0,
    timeout_s: float = 10.0,
    client: FleetwatchClient | None = None,
    title: str = "fleetwatch",
) -> Dash:
    """The dashboard, reading the API at ``api_url`` with a bearer ``token``.

    It refreshes every ``refresh_s`` seconds; JS and CSS are served by the app itself (no CDN).
    The client is kept on ``app.fleetwatch_client`` so an embedding process can close it.
    """
    client = client or FleetwatchClient(api_url, token, timeout_s=timeout_s)
    app = Dash(
        __name__,
        title=title,
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title=None,
    )
    app.layout = shell(refresh_s)
    _register_shell(app)
    for page in (overview, device, alerts, actions):
        page.register(app, client)
    app.fleetwatch_client = client  # type: ignore[attr-defined]
    return app


def shell(refresh_s: float) -> html.Div:
    """What every page shares: header, navigation, theme toggle and the refresh clock."""
    links = [dcc.Link(name, href=href, className="nav-link") for name, href in NAV]
    return html.Div(
        id="shell",
        className="theme-light",
        children=[
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="theme-store", storage_type="local", data="light"),
            dcc.Store(id="page-path"),
            dcc.Interval(id="refresh", interval=int(refresh_s * 1000), n_intervals=0),
            html.Header(
                [
                    dcc.Link("fleetwatch", href="/", className="brand"),
                    html.Nav(links, className="nav"),
                    html.Button("dark theme", id="theme-toggle", className="button theme-toggle"),
                ],
                className="header",
            ),
            html.Main(id="page", className="page"),
        ],
    )


def route(pathname: str | None, search: str | None) -> Any:
    """The layout of a URL."""
    query = ui.parse_query(search)
    path = (pathname or "/").rstrip("/") or "/"
    if path == "/":
        return overview.layout(query)
    if path.startswith("/device/"):
        return device.layout(unquote(path.removeprefix("/device/")), query)
    if path == "/alerts":
        return alerts.layout(query)
    if path == "/actions":
        return actions.layout(query)
    return html.Div(
        [html.H1("Not found"), html.P(f"No page at {path}."), dcc.Link("Fleet overview", href="/")],
        className="card",
    )


def _register_shell(app: Dash) -> None:
    @app.callback(
        Output("page", "children"),
        Output("page-path", "data"),
        Input("url", "pathname"),
        State("url", "search"),
        State("page-path", "data"),
    )
    def _route(pathname: str | None, search: str | None, shown: str | None) -> Any:
        # A filter writes the query string only; the page stays, so nothing is re-created.
        if pathname == shown:
            return no_update, no_update
        return route(pathname, search), pathname

    @app.callback(
        Output("theme-store", "data"),
        Input("theme-toggle", "n_clicks"),
        State("theme-store", "data"),
        prevent_initial_call=True,
    )
    def _toggle(_: int | None, current: str | None) -> str:
        return "light" if th.normalise(current) == "dark" else "dark"

    @app.callback(
        Output("shell", "className"),
        Output("theme-toggle", "children"),
        Input("theme-store", "data"),
    )
    def _apply_theme(current: str | None) -> tuple[str, str]:
        name = th.normalise(current)
        return f"theme-{name}", "light theme" if name == "dark" else "dark theme"


def triggered_id() -> Any:
    """The id of the component that fired the running callback (a dict for pattern ids)."""
    return dash.ctx.triggered_id
