"""Device page: series over a chosen range with anomalies, forecasts (band, limits, time to limit
in words), component/deployment timeline, its alerts and actions, and peers in its cohort."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import figures, ui, words
from dashboards import theme as th
from dashboards.client import FleetwatchClient, NotAvailable

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_RANGE = "24h"
# Steps the API is asked for: the smallest that keeps a series at or under MAX_POINTS.
STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
MAX_POINTS = 2000
MAX_PANELS = 6
MAX_FORECAST_PATHS = 3
DEFAULT_METRICS = ("temperature_celsius", "memory_used_bytes", "disk_free_bytes")
TIMELINES = (
    ("component_state", "component", "state"),
    ("deployment_status", "deployment", "status"),
)


def step_for(span: timedelta, max_points: int = MAX_POINTS) -> int:
    """The downsampling step for a range: ~1,000–2,000 points per series."""
    seconds = span.total_seconds()
    for step in STEPS_S:
        if seconds / step <= max_points:
            return step
    return STEPS_S[-1]


def layout(device_id: str, query: dict[str, list[str]]) -> html.Div:
    span = ui.first(query, "range", DEFAULT_RANGE)
    return html.Div(
        [
            dcc.Store(id="dv-device", data=device_id),
            # The time window the user zoomed to, applied to every refreshed figure: uirevision
            # alone loses it when a refresh crosses the zoom in flight.
            dcc.Store(id="dv-zoom"),
            html.Div(id="dv-banner", className="banner"),
            html.Div(id="dv-header", className="card device-header"),
            html.Div(
                [
                    dcc.RadioItems(
                        id="dv-range", options=list(RANGES), inline=True,
                        value=span if span in RANGES else DEFAULT_RANGE, className="filter-states",
                    ),
                    dcc.Dropdown(
                        id="dv-metrics", multi=True, value=query.get("metrics", []),
                        options=ui.options(query.get("metrics", [])),
                        placeholder="metrics", className="filter filter-wide",
                    ),
                ],
                className="filters",
            ),
            ui.section("Time to limit", html.Ul(id="dv-forecasts", className="sentences")),
            ui.section("Series", dcc.Graph(id="dv-series", config={"displaylogo": False})),
            ui.section("Component and deployment states",
                       dcc.Graph(id="dv-timeline", config={"displaylogo": False})),
            ui.section(
                "Against its cohort",
                dcc.Dropdown(id="dv-peer-metric", clearable=False, className="filter",
                             value=ui.first(query, "peer", "temperature_celsius"),
                             options=ui.options([ui.first(query, "peer", "temperature_celsius")])),
                dcc.Graph(id="dv-peers", config={"displaylogo": False}),
            ),
            html.Div(
                [ui.section("Alerts", html.Div(id="dv-alerts")),
                 ui.section("Actions", html.Div(id="dv-actions"))],
                className="columns",
            ),
        ]
    )  # fmt: skip


@dataclass
class DevicePage:
    """Everything the device page shows, built from API payloads."""

    device: dict[str, Any]
    metrics: list[str]
    chosen: list[str]
    sentences: list[str]
    series: go.Figure
    timeline: go.Figure
    alerts: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    points_drawn: int = 0
    series_drawn: int = 0
    errors: list[str] = field(default_factory=list)


def _choose(metrics: list[str], forecasts: list[dict], chosen: list[str]) -> list[str]:
    if chosen:
        return chosen[:MAX_PANELS]
    picks = [f["metric"] for f in forecasts if f.get("will_cross")]
    picks += [m for m in DEFAULT_METRICS if m in metrics]
    return list(dict.fromkeys(picks))[:4] or metrics[:2]


def build_device_page(
    client: FleetwatchClient,
    device_id: str,
    *,
    span: str = DEFAULT_RANGE,
    chosen: list[str] | None = None,
    theme: th.Theme = "light",
    now: datetime | None = None,
) -> DevicePage:
    """Fetch and build the device page; failed calls become banner lines, not tracebacks."""
    errors = ui.Errors()
    end = now or datetime.now(tz=UTC)
    start = end - RANGES.get(span, RANGES[DEFAULT_RANGE])
    step = step_for(end - start)
    first = _fetch_device(client, device_id, start, end, step, errors)
    forecasts, listed = first["forecasts"], first["listed"]
    metrics = sorted({str(s.get("metric") or s.get("name")) for s in listed} or DEFAULT_METRICS)
    picks = _choose(metrics, forecasts, chosen or [])
    panels = _fetch_panels(client, device_id, picks, start, end, step, errors)
    paths = _forecast_paths(client, device_id, forecasts, picks)
    revision = f"series:{device_id}:{span}:{','.join(picks)}"
    return DevicePage(
        device=first["device"],
        metrics=metrics,
        chosen=picks,
        sentences=[words.forecast_sentence(f) for f in _by_urgency(forecasts)],
        series=figures.device_series(
            panels, anomalies=first["anomalies"], forecasts=forecasts, paths=paths, theme=theme,
            revision=revision,
        ),
        timeline=_timeline([first[m] for m, _, _ in TIMELINES], device_id, theme),
        alerts=first["alerts"],
        actions=first["actions"],
        points_drawn=max((len(s.get("values", [])) for p in panels for s in p["series"]),
                         default=0),
        series_drawn=sum(len(p["series"]) for p in panels),
        errors=list(errors),
    )  # fmt: skip


def _fetch_device(
    client: FleetwatchClient,
    device_id: str,
    start: datetime,
    end: datetime,
    step: int,
    errors: ui.Errors,
) -> dict[str, Any]:
    """Everything about the device that does not depend on the chosen metrics, at once."""

    def states(metric: str) -> ui.Call:
        fetch = partial(client.series_range, device=device_id, metric=metric, start=start,
                        end=end, step_s=step, agg="max")  # fmt: skip
        return fetch, [], metric

    return errors.gather({
        "device": (partial(client.device, device_id), {"id": device_id}, "device"),
        "forecasts": (partial(client.forecasts, device_id), [], "forecasts"),
        "listed": (partial(client.list_series, device=device_id), [], "series list"),
        "anomalies": (partial(client.anomalies, device_id, since=start), [], "anomalies"),
        "alerts": (partial(client.alerts, device=device_id), [], "alerts"),
        "actions": (partial(client.actions, device=device_id), [], "actions"),
        **{metric: states(metric) for metric, _, _ in TIMELINES},
    })  # fmt: skip


def _fetch_panels(
    client: FleetwatchClient,
    device_id: str,
    picks: list[str],
    start: datetime,
    end: datetime,
    step: int,
    errors: ui.Errors,
) -> list[dict[str, Any]]:
    """The chosen metrics' series, downsampled by the API to ``step``, at once."""
    calls: dict[str, ui.Call] = {
        metric: (partial(client.series_range, device=device_id, metric=metric, start=start,
                         end=end, step_s=step), [], metric)
        for metric in picks
    }  # fmt: skip
    series = errors.gather(calls)
    return [{"metric": metric, "series": series[metric]} for metric in picks]


def _by_urgency(forecasts: list[dict]) -> list[dict]:
    def key(f: dict) -> tuple[int, float]:
        ttt = f.get("time_to_threshold_s")
        return (0 if f.get("will_cross") and ttt is not None else 1, ttt or 0.0)

    return sorted(forecasts, key=key)


def _forecast_paths(
    client: FleetwatchClient, device_id: str, forecasts: list[dict], picks: list[str]
) -> dict[str, dict[str, Any]]:
    """Forecast bands of the most urgent crossing series; where the API has no forecast path
    the figure draws the crossing interval from the forecast itself, so none is an error."""
    wanted = [f for f in _by_urgency(forecasts) if f.get("will_cross") and f["metric"] in picks]
    got = ui.Errors().gather({
        figures.series_key(f["metric"], f.get("labels")): (
            lambda f=f: client.forecast_path(device_id, metric=f["metric"], labels=f.get("labels")),
            None,
            "forecast path",
        )
        for f in wanted[:MAX_FORECAST_PATHS]
    })  # fmt: skip
    return {key: path for key, path in got.items() if path}


def _timeline(answers: list[list[dict[str, Any]]], device_id: str, theme: th.Theme) -> go.Figure:
    """Component and deployment states in one chart, from their range answers (TIMELINES order)."""
    series: list[dict[str, Any]] = []
    key_label, state_label = TIMELINES[0][1], TIMELINES[0][2]
    for (_, key, state), got in zip(TIMELINES, answers, strict=True):
        for s in got:
            labels = dict(s.get("labels") or {})
            # Both kinds share one chart: deployments are keyed like components.
            labels.setdefault(key_label, f"{key} {labels.get(key, '')}".strip())
            labels.setdefault(state_label, labels.get(state, ""))
            series.append({**s, "labels": labels})
    return figures.state_timeline(
        series, key_label=key_label, state_label=state_label, theme=theme,
        revision=f"timeline:{device_id}",
    )  # fmt: skip


def zoom_window(relayout: dict[str, Any]) -> Any:
    """The time window a plotly relayout event zoomed to; None when the user reset the axes,
    no_update for events that do not touch time (legend clicks, y zoom)."""
    for key, value in relayout.items():
        axis, _, attr = key.partition(".")
        if not axis.startswith("xaxis"):
            continue
        if attr == "autorange" and value:
            return None
        if attr == "range" and isinstance(value, list) and len(value) == 2:
            return value
    start = next((v for k, v in relayout.items() if k.startswith("xaxis") and
                  k.endswith(".range[0]")), None)  # fmt: skip
    end = next((v for k, v in relayout.items() if k.startswith("xaxis") and
                k.endswith(".range[1]")), None)  # fmt: skip
    return [start, end] if start is not None and end is not None else no_update


def peer_values(client: FleetwatchClient, device: dict[str, Any], metric: str) -> list[dict]:
    """Latest value of ``metric`` for each device of the cohort: ``[{device_id, value}]``.

    A device with several series of the metric (sensors, disks) is shown by its largest, the
    one closest to trouble. Without the peers endpoint, the cohort's devices and the latest
    points of its site stand in.
    """
    cohort, device_id = device.get("cohort"), device.get("id")
    if not cohort or not device_id:
        return []
    try:
        points = [
            (p.get("device_id"), p.get("value")) for p in client.peers(device_id, metric=metric)
        ]
    except NotAvailable:
        members = {d["id"] for d in client.devices(cohort=cohort, limit=1000)["items"]}
        site = {"site": str(device.get("site_id"))}
        points = [
            ((p.get("labels") or {}).get("device"), p.get("value"))
            for p in client.latest(metric=metric, labels=site)
        ]
        points = [(d, v) for d, v in points if d in members]
    best: dict[str, float] = {}
    for member, value in points:
        if member and value is not None:
            best[member] = max(best.get(member, float("-inf")), float(value))
    return [{"device_id": d, "value": v} for d, v in sorted(best.items())]


def _header(device: dict[str, Any]) -> list[Any]:
    summary = device.get("health_summary") or {}
    facts = [
        ("site", device.get("site_id")), ("cohort", device.get("cohort")),
        ("hardware", device.get("hardware_model")), ("accelerator", device.get("accelerator")),
        ("firmware", device.get("firmware")), ("runtime", device.get("runtime")),
        ("node", device.get("node_name")), ("last seen", words.ago(device.get("last_seen_at"))),
    ]  # fmt: skip
    status = str(summary.get("status", "unknown"))
    risk = summary.get("risk_24h")
    return [
        html.H1([device.get("id", "device"), " ", ui.badge(status)]),
        html.P(f"risk in 24 h: {risk:.0%}" if risk is not None else "not analysed yet",
               className="risk-line"),
        html.Dl([part for name, val in facts if val
                 for part in (html.Dt(name), html.Dd(str(val)))], className="facts"),
    ]  # fmt: skip


def _alerts(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("severity", lambda r: ui.badge(str(r.get("severity", "")))),
            ("alert", "rule"),
            ("state", "state"),
            ("summary", lambda r: (r.get("annotations") or {}).get("summary")),
            ("since", lambda r: words.ago(r.get("starts_at") or r.get("active_at"))),
        ],
        empty="no alerts",
    )


def _actions(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("action", "kind"),
            ("state", lambda r: ui.badge(str(r.get("state", "")))),
            ("why", lambda r: "; ".join(r.get("reasons") or [])),
            ("when", lambda r: words.clock(r.get("created_at"))),
        ],
        empty="no actions",
    )


def register(app: Dash, client: FleetwatchClient) -> None:
    @app.callback(
        Output("dv-banner", "children"),
        Output("dv-header", "children"),
        Output("dv-forecasts", "children"),
        Output("dv-series", "figure"),
        Output("dv-timeline", "figure"),
        Output("dv-alerts", "children"),
        Output("dv-actions", "children"),
        Output("dv-metrics", "options"),
        Output("dv-peer-metric", "options"),
        Output("dv-metrics", "value"),
        Input("refresh", "n_intervals"),
        Input("dv-range", "value"),
        Input("dv-metrics", "value"),
        Input("theme-store", "data"),
        State("dv-device", "data"),
        State("dv-zoom", "data"),
    )
    def _refresh(
        _: int,
        span: str,
        chosen: list[str] | None,
        theme: str | None,
        device_id: str,
        zoom: list[str] | None,
    ) -> tuple[Any, ...]:
        page = build_device_page(
            client, device_id, span=span, chosen=chosen or [], theme=th.normalise(theme)
        )
        if zoom:
            # The zoom is part of the revision: plotly then takes this range as the user's view
            # instead of holding on to whatever an earlier answer showed.
            revision = f"{page.series.layout.uirevision}:{zoom[0]}:{zoom[1]}"
            page.series.update_xaxes(range=zoom, autorange=False)
            page.series.update_layout(uirevision=revision)
        sentences = [html.Li(s) for s in page.sentences] or [html.Li("no forecast yet")]
        options = [{"label": m, "value": m} for m in page.metrics]
        return (
            ui.banner(page.errors),
            _header(page.device),
            sentences,
            page.series,
            page.timeline,
            _alerts(page.alerts),
            _actions(page.actions),
            options,
            options,
            no_update if chosen else page.chosen,  # show the metrics picked by default
        )

    @app.callback(
        Output("dv-zoom", "data"),
        Input("dv-series", "relayoutData"),
        Input("dv-range", "value"),
        prevent_initial_call=True,
    )
    def _zoom(relayout: dict[str, Any] | None, _: str) -> Any:
        if ctx.triggered_id == "dv-range":
            return None  # a new range starts unzoomed
        return zoom_window(relayout or {})

    @app.callback(
        Output("dv-peers", "figure"),
        Input("refresh", "n_intervals"),
        Input("dv-peer-metric", "value"),
        Input("theme-store", "data"),
        State("dv-device", "data"),
    )
    def _peers(_: int, metric: str | None, theme: str | None, device_id: str) -> go.Figure:
        metric = metric or "temperature_celsius"
        errors = ui.Errors()
        device = errors.call(lambda: client.device(device_id), {}, "device")
        peers = errors.call(lambda: peer_values(client, device, metric), [], "peers")
        fig = figures.peer_comparison(peers, device_id, metric, th.normalise(theme))
        if errors and not peers:
            fig.layout.annotations[0].text = "; ".join(errors)
        return fig

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("dv-range", "value"),
        Input("dv-metrics", "value"),
        Input("dv-peer-metric", "value"),
        prevent_initial_call=True,
    )
    def _remember(span: str, chosen: list[str] | None, peer: str | None) -> Any:
        if span is None:
            return no_update
        return ui.to_search({"range": span, "metrics": chosen or [], "peer": peer})  # fmt: skip
