"""Fleet overview: every device at a glance, the riskiest with reasons, firing alerts, pending
actions; filters by site, cohort and state kept in the URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import figures, ui, words
from dashboards import theme as th
from dashboards.client import FleetwatchClient, NotAvailable

STATE_OPTIONS = [{"label": s, "value": s} for s in figures.STATES]
PAGE_SIZE = 1000  # the API's largest device page


def layout(query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            html.Div(id="ov-banner", className="banner"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="ov-site", placeholder="all sites", value=ui.first(query, "site"),
                        # Dash drops a value missing from the options: seed them from the URL.
                        options=ui.options(query.get("site", [])[:1]), className="filter",
                    ),
                    dcc.Dropdown(
                        id="ov-cohort", placeholder="all cohorts", multi=True,
                        value=query.get("cohort", []), options=ui.options(query.get("cohort", [])),
                        className="filter filter-wide",
                    ),
                    dcc.Checklist(
                        id="ov-state", options=STATE_OPTIONS, value=query.get("state", []),
                        inline=True, className="filter-states",
                    ),
                ],
                className="filters",
            ),
            html.Div(id="ov-counts", className="tiles"),
            ui.section(
                "Fleet health",
                html.P("One cell per device, riskiest first; click a cell to open it.",
                       className="hint"),
                dcc.Graph(id="ov-grid", config={"displaylogo": False}),
            ),
            html.Div(
                [
                    ui.section("Most at risk", html.Div(id="ov-risk"), id="ov-risk-card"),
                    html.Div(
                        [
                            ui.section("Firing alerts", html.Div(id="ov-alerts")),
                            ui.section("Pending actions", html.Div(id="ov-actions")),
                        ],
                        className="column",
                    ),
                ],
                className="columns",
            ),
        ]
    )  # fmt: skip


@dataclass
class Overview:
    """Everything the overview shows, built from API payloads."""

    grid: go.Figure
    counts: dict[str, int]
    at_risk: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    sites: list[str]
    cohorts: list[str]
    errors: list[str] = field(default_factory=list)


def fleet_health(client: FleetwatchClient, *, site: str | None) -> tuple[list[dict], int | None]:
    """Health rows of the fleet and the number of registered devices.

    Without the health endpoint, the device list (which carries each device's latest health
    summary) stands in, page by page.
    """
    try:
        rows = client.health(site=site)
        total = client.devices(site=site, limit=1)["total"]
        return rows, total
    except NotAvailable:
        pass
    rows, offset, total = [], 0, 1
    while offset < total:
        page = client.devices(site=site, limit=PAGE_SIZE, offset=offset)
        total = page["total"]
        for d in page["items"]:
            summary = d.get("health_summary")
            if summary:
                rows.append(
                    {
                        "device_id": d["id"],
                        "site_id": d.get("site_id"),
                        "cohort": d.get("cohort"),
                        "top_signals": None,
                        **summary,
                    }
                )
        offset += PAGE_SIZE
        if not page["items"]:
            break
    return rows, total  # fmt: skip


def build_overview(
    client: FleetwatchClient,
    *,
    site: str | None = None,
    cohorts: list[str] | None = None,
    states: list[str] | None = None,
    theme: th.Theme = "light",
) -> Overview:
    """Fetch and build the whole overview; failed calls become banner lines, not tracebacks."""
    errors = ui.Errors()
    got = errors.gather({
        "health": (partial(fleet_health, client, site=site), ([], None), "health"),
        "sites": (client.sites, [], "sites"),
        "alerts": (partial(client.alerts, state="firing", site=site), [], "alerts"),
        "actions": (partial(client.actions, state="pending", site=site), [], "actions"),
    })  # fmt: skip
    health, total = got["health"]
    sites, alerts, actions = got["sites"], got["alerts"], got["actions"]
    all_cohorts = sorted({str(r.get("cohort")) for r in health if r.get("cohort")})
    shown = figures.filter_health(health, cohorts=cohorts or [], states=states or [])
    revision = f"grid:{site}:{','.join(cohorts or [])}:{','.join(states or [])}"
    return Overview(
        grid=figures.fleet_grid(shown, theme, revision=revision),
        counts=figures.state_counts(health, None if (cohorts or states) else total),
        at_risk=figures.most_at_risk(shown, 10),
        alerts=alerts[:15],
        actions=actions[:15],
        sites=[str(s.get("id")) for s in sites],
        cohorts=all_cohorts,
        errors=list(errors),
    )


def _risk_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("device", lambda r: ui.device_link(r["device_id"])),
            ("state", lambda r: ui.badge(str(r["status"]))),
            ("risk 1 h", lambda r: f"{r['risk_1h']:.0%}"),
            ("risk 24 h", lambda r: f"{r['risk_24h']:.0%}"),
            ("why", "reason"),
            ("cohort", "cohort"),
        ],
        empty="no devices match",
        id="ov-risk-table",
    )


def _alerts_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("severity", lambda r: ui.badge(str(r.get("severity", "")))),
            ("alert", lambda r: r.get("rule") or r.get("labels", {}).get("alertname")),
            ("device", lambda r: ui.device_link(r.get("device"))),
            ("since", lambda r: words.ago(r.get("starts_at") or r.get("active_at"))),
        ],
        empty="no firing alerts",
    )


def _actions_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("action", "kind"),
            ("device", lambda r: ui.device_link(r.get("device_id"))),
            ("why", lambda r: "; ".join(r.get("reasons") or [])),
            ("", lambda r: dcc.Link("review", href="/actions")),
        ],
        empty="no actions wait for approval",
    )


def render(view: Overview) -> tuple[Any, ...]:
    tiles = [ui.tile(state, view.counts.get(state, 0), state) for state in figures.STATES]
    return (
        ui.banner(view.errors),
        tiles,
        view.grid,
        _risk_table(view.at_risk),
        _alerts_table(view.alerts),
        _actions_table(view.actions),
        [{"label": s, "value": s} for s in view.sites],
        [{"label": c, "value": c} for c in view.cohorts],
    )


def register(app: Dash, client: FleetwatchClient) -> None:
    @app.callback(
        Output("ov-banner", "children"),
        Output("ov-counts", "children"),
        Output("ov-grid", "figure"),
        Output("ov-risk", "children"),
        Output("ov-alerts", "children"),
        Output("ov-actions", "children"),
        Output("ov-site", "options"),
        Output("ov-cohort", "options"),
        Input("refresh", "n_intervals"),
        Input("ov-site", "value"),
        Input("ov-cohort", "value"),
        Input("ov-state", "value"),
        Input("theme-store", "data"),
    )
    def _refresh(
        _: int,
        site: str | None,
        cohorts: list[str] | None,
        states: list[str] | None,
        theme: str | None,
    ) -> tuple[Any, ...]:
        view = build_overview(
            client,
            site=site or None,
            cohorts=cohorts or [],
            states=states or [],
            theme=th.normalise(theme),
        )
        return render(view)  # fmt: skip

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("ov-site", "value"),
        Input("ov-cohort", "value"),
        Input("ov-state", "value"),
        prevent_initial_call=True,
    )
    def _remember(site: str | None, cohorts: list[str] | None, states: list[str] | None) -> str:
        return ui.to_search({"site": site, "cohort": cohorts or [], "state": states or []})

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Output("url", "search", allow_duplicate=True),
        Input("ov-grid", "clickData"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def _open_device(click: dict | None, _path: str | None) -> tuple[Any, Any]:
        points = (click or {}).get("points") or []
        device_id = points[0].get("customdata") if points else None
        if not device_id:
            return no_update, no_update
        return f"/device/{quote(str(device_id), safe='')}", ""
