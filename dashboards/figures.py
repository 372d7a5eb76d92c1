"""Pure figure builders: API payloads (plain dicts) in, plotly figures out.

No I/O and no Dash here, so every picture the dashboard draws can be tested directly. A fleet of
10,000 devices is one heatmap trace (one cell per device), never 10,000 components.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards import theme as th
from dashboards import words

STATES = ("critical", "warning", "ok", "unknown")
MIN_GRID_COLUMNS = 40
Row = Mapping[str, Any]


def _empty(message: str, theme: th.Theme, height: int = 220) -> go.Figure:
    fig = go.Figure(layout={"template": th.template(theme), "height": height})
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def cohort_row(row: Row) -> str:
    """The grid row of a device: its site, then hardware and firmware ("site · model/fw")."""
    cohort = str(row.get("cohort") or "")
    site = str(row.get("site_id") or "")
    parts = cohort.split("/")
    kind = "/".join(parts[:2]) if len(parts) >= 2 else cohort or "unknown"
    return f"{site} · {kind}"


def _risk(row: Row) -> float:
    value = row.get("risk_24h")
    return float(value) if value is not None else 0.0


def fleet_grid(
    health: Sequence[Row], theme: th.Theme = "light", *, revision: str = ""
) -> go.Figure:
    """The fleet at a glance: one row per site and cohort, one cell per device coloured by its
    24-hour risk on cividis, riskiest first. ``customdata`` carries the device id for clicks."""
    if not health:
        return _empty("no devices match these filters", theme)
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in health:
        groups[cohort_row(row)].append(row)
    names = sorted(groups, reverse=True)  # plotly draws the first row at the bottom
    width = max(len(rows) for rows in groups.values())
    # numpy arrays: plotly validates them whole instead of cell by cell (10,000 cells).
    z = np.full((len(names), width), np.nan)
    ids = np.full((len(names), width), "", dtype=object)
    text = np.full((len(names), width), "", dtype=object)
    for i, name in enumerate(names):
        rows = sorted(groups[name], key=_risk, reverse=True)
        z[i, : len(rows)] = [_risk(r) for r in rows]
        ids[i, : len(rows)] = [str(r.get("device_id")) for r in rows]
        text[i, : len(rows)] = [_cell_text(r) for r in rows]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            y=names,
            customdata=ids,
            text=text,
            hovertemplate="%{text}<extra></extra>",
            colorscale=th.RISK_SCALE,
            zmin=0.0,
            zmax=1.0,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "risk 24 h"}, "thickness": 12, "tickformat": ".0%"},
        )
    )
    row_px = max(10, min(28, 640 // max(1, len(names))))
    fig.update_layout(
        template=th.template(theme),
        height=max(180, row_px * len(names) + 90),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        uirevision=revision,
        # Small fleets keep square-ish cells instead of stretching a few across the page.
        xaxis={
            "title": {"text": "devices, riskiest first →", "standoff": 4},
            "showgrid": False,
            "zeroline": False,
            "showticklabels": False,
            "range": [-0.5, max(width, MIN_GRID_COLUMNS) - 0.5],
        },
        yaxis={"showgrid": False, "automargin": True},
    )
    return fig


def _cell_text(row: Row) -> str:
    return (
        f"<b>{row.get('device_id')}</b> ({row.get('status', 'unknown')})<br>"
        f"risk 1 h {float(row.get('risk_1h') or 0):.0%} · 24 h {_risk(row):.0%}<br>"
        f"{words.reason(row.get('top_signals'))}"
    )


def state_counts(health: Sequence[Row], devices_total: int | None = None) -> dict[str, int]:
    """Devices per health state; devices the analysis has not scored yet count as unknown."""
    counts = Counter(str(r.get("status") or "unknown") for r in health)
    out = {state: counts.get(state, 0) for state in STATES}
    for state, n in counts.items():
        if state not in out:
            out["unknown"] += n
    if devices_total is not None and devices_total > len(health):
        out["unknown"] += devices_total - len(health)
    return out


def most_at_risk(health: Sequence[Row], limit: int = 10) -> list[dict[str, Any]]:
    """The riskiest devices with the reason in words, for the overview table."""
    rows = sorted(health, key=lambda r: (_risk(r), float(r.get("risk_1h") or 0)), reverse=True)
    return [
        {
            "device_id": r.get("device_id"),
            "site_id": r.get("site_id"),
            "cohort": r.get("cohort"),
            "status": r.get("status", "unknown"),
            "risk_1h": float(r.get("risk_1h") or 0),
            "risk_24h": _risk(r),
            "reason": words.reason(r.get("top_signals")),
        }
        for r in rows[:limit]
    ]


def filter_health(
    health: Sequence[Row], *, cohorts: Sequence[str] = (), states: Sequence[str] = ()
) -> list[Row]:
    """Health rows in the chosen cohorts and states (an empty choice keeps all)."""
    out = list(health)
    if cohorts:
        wanted = set(cohorts)
        out = [r for r in out if r.get("cohort") in wanted]
    if states:
        wanted_states = set(states)
        out = [r for r in out if (r.get("status") or "unknown") in wanted_states]
    return out


# --- device page -------------------------------------------------------------------------------
def _to_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    return words.parse_time(str(value))


def device_series(
    panels: Sequence[Mapping[str, Any]],
    *,
    anomalies: Sequence[Row] = (),
    forecasts: Sequence[Row] = (),
    paths: Mapping[str, Mapping[str, Any]] | None = None,
    theme: th.Theme = "light",
    revision: str = "",
) -> go.Figure:
    """A device's series, one panel per metric on a shared time axis, with anomaly episodes
    shaded, limits drawn as lines and forecasts as a band up to the limit.

    ``panels``: ``[{"metric": m, "series": [{labels, timestamps, values}]}]``; ``paths`` maps a
    series key (``series_key(metric, labels)``) to a forecast path ``{times, mean, lower, upper}``.
    """
    if not panels:
        return _empty("no series in this range", theme, height=260)
    colours = th.category_colours(theme)
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06 if len(panels) < 5 else 0.03,
        subplot_titles=[_panel_title(p["metric"]) for p in panels],
    )
    shaded, drawn = 0, 0
    for i, panel in enumerate(panels, start=1):
        metric = panel["metric"]
        # One colour sequence over all panels: the legend is shared, so colours must not repeat.
        for series in panel.get("series", []):
            fig.add_trace(_line(metric, series, colours[drawn % len(colours)]), row=i, col=1)
            drawn += 1
        _add_limits_and_forecasts(fig, i, metric, forecasts, paths or {}, theme)
        shaded += _add_anomalies(fig, i, metric, anomalies)
    if shaded:
        fig.add_trace(_legend_marker("anomaly", "#CC79A7", "square"))
    # Timestamps come as epoch milliseconds; a date axis reads them as such.
    fig.update_xaxes(type="date")
    fig.update_layout(
        template=th.template(theme),
        height=max(320, 240 * len(panels)),
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        uirevision=revision,
        hovermode="x unified",
        legend={
            "orientation": "h",
            "y": -0.05 if len(panels) > 1 else -0.15,
            "traceorder": "normal",
        },
    )
    fig.update_yaxes(automargin=True)
    return fig


def series_key(metric: str, labels: Mapping[str, str] | None) -> str:
    extra = {k: v for k, v in (labels or {}).items() if k not in ("device", "site")}
    return metric + "{" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "}"


def display_scale(metric: str) -> tuple[float, str]:
    """How a metric is drawn: a factor on its base unit and the unit shown (bytes in GiB,
    ratios in percent), so axes read "9.3 GiB" rather than "10B"."""
    if metric.endswith("_bytes") or metric.endswith("_bytes_total"):
        return 1 / 2**30, "GiB"
    if metric.endswith("_ratio"):
        return 100.0, "%"
    unit = words.value(metric, 0.0).removeprefix("0.0").strip()
    return 1.0, unit


def _scaled(values: Sequence[Any] | None, factor: float) -> np.ndarray:
    # numpy arrays: plotly validates them whole instead of point by point (20 x 2,000 points).
    return np.asarray(values if values is not None else [], dtype=float) * factor


def _times(values: Sequence[Any] | None) -> np.ndarray:
    """Epoch milliseconds (or ISO strings) as one array for a date axis."""
    array = np.asarray(values if values is not None else [])
    return array.astype("int64") if array.dtype.kind in "iuf" else array


def _panel_title(metric: str) -> str:
    _, unit = display_scale(metric)
    name = metric.replace("_", " ")
    for suffix in (" celsius", " bytes", " ratio", " watts", " seconds", " rpm", " hertz"):
        name = name.removesuffix(suffix)
    return f"{name} ({unit})" if unit else name


def _line(metric: str, series: Mapping[str, Any], colour: str) -> go.Scatter:
    factor, _ = display_scale(metric)
    return go.Scatter(
        x=_times(series.get("timestamps")),
        y=_scaled(series.get("values"), factor),
        mode="lines",
        name=words.series_name(metric, series.get("labels")),
        line={"color": colour, "width": 1.5},
        connectgaps=False,
    )


def _legend_marker(name: str, colour: str, symbol: str) -> go.Scatter:
    return go.Scatter(
        x=[None], y=[None], mode="markers", name=name, marker={"color": colour, "symbol": symbol}
    )


def _add_anomalies(fig: go.Figure, row: int, metric: str, anomalies: Sequence[Row]) -> int:
    now = datetime.now(tz=UTC)
    # Beyond ~40 shaded spans a panel reads as noise; the newest matter most.
    episodes = [a for a in anomalies if a.get("metric") == metric][-40:]
    for episode in episodes:
        start = _to_datetime(episode.get("started_at"))
        end = _to_datetime(episode.get("ended_at")) or now
        if start is None:
            continue
        if end - start < timedelta(minutes=2):  # keep short episodes visible
            end = start + timedelta(minutes=2)
        fig.add_vrect(
            x0=start, x1=end, row=row, col=1, fillcolor="#CC79A7", opacity=0.25, line_width=0
        )
    return len(episodes)


def _add_limits_and_forecasts(
    fig: go.Figure,
    row: int,
    metric: str,
    forecasts: Sequence[Row],
    paths: Mapping[str, Mapping[str, Any]],
    theme: th.Theme,
) -> None:
    factor, _ = display_scale(metric)
    for forecast in (f for f in forecasts if f.get("metric") == metric):
        limit = forecast.get("limit_value")
        if limit is not None:
            label = f"{words.limit_name(str(forecast.get('limit_name', 'limit')))} "
            label += words.value(metric, float(limit))
            fig.add_hline(
                y=float(limit) * factor,
                row=row,
                col=1,
                line={"color": "#D55E00", "dash": "dash", "width": 1.5},
                annotation_text=label,
                annotation_position="top left",
            )
        path = paths.get(series_key(metric, forecast.get("labels")))
        if path:
            band = forecast_path_traces(path, theme, scale=factor)
        else:
            band = forecast_fan_traces(forecast, scale=factor)
        for trace in band:
            fig.add_trace(trace, row=row, col=1)


def forecast_path_traces(
    path: Mapping[str, Any], theme: th.Theme, *, scale: float = 1.0
) -> list[go.Scatter]:
    """The forecast band of a forecast path: lower and upper bounds filled, mean dashed."""
    times = list(path.get("times") or [])
    if not times:
        return []
    fill = "rgba(86,180,233,0.30)"
    return [
        go.Scatter(
            x=times,
            y=_scaled(path.get("lower"), scale),
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            name="forecast lower",
        ),
        go.Scatter(
            x=times,
            y=_scaled(path.get("upper"), scale),
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=fill,
            name="forecast interval",
            hoverinfo="skip",
        ),
        go.Scatter(
            x=times,
            y=_scaled(path.get("mean"), scale),
            mode="lines",
            name="forecast",
            line={"color": "#0072B2" if theme == "light" else "#56B4E9", "dash": "dot"},
        ),
    ]


def forecast_fan_traces(forecast: Row, *, scale: float = 1.0) -> list[go.Scatter]:
    """Without a forecast path, the crossing interval drawn as a fan from the current value to
    the limit at the earliest and latest expected crossing (the band of a time-to-threshold)."""
    start = _to_datetime(forecast.get("computed_at"))
    current, limit = forecast.get("current_value"), forecast.get("limit_value")
    ttt = forecast.get("time_to_threshold_s")
    if not forecast.get("will_cross") or None in (start, current, limit, ttt):
        return []
    assert start is not None and ttt is not None and current is not None and limit is not None
    current, limit = float(current) * scale, float(limit) * scale
    lower = float(forecast.get("lower_s") or ttt)
    upper = float(forecast.get("upper_s") or ttt)
    early, late = start + timedelta(seconds=lower), start + timedelta(seconds=upper)
    middle = start + timedelta(seconds=float(ttt))
    return [
        go.Scatter(
            x=[start, early, late, start],
            y=[current, limit, limit, current],
            fill="toself",
            fillcolor="rgba(86,180,233,0.30)",
            line={"width": 0},
            mode="lines",
            name="forecast interval",
            hoverinfo="skip",
        ),
        go.Scatter(
            x=[start, middle],
            y=[current, limit],
            mode="lines+markers",
            name="forecast",
            line={"color": "#0072B2", "dash": "dot"},
            marker={"size": [0, 8]},
            hovertext=["now", words.forecast_sentence(forecast)],
            hoverinfo="text",
        ),
    ]


def state_timeline(
    series: Sequence[Mapping[str, Any]],
    *,
    key_label: str = "component",
    state_label: str = "state",
    theme: th.Theme = "light",
    revision: str = "",
) -> go.Figure:
    """Lifecycle of components (or deployments) as coloured runs: one bar row per component,
    one colour per state. Input is ``component_state``-style 0/1 series, one per state."""
    runs = state_runs(series, key_label=key_label, state_label=state_label)
    if not runs:
        return _empty(f"no {key_label} states in this range", theme, height=160)
    colours = th.category_colours(theme)
    states = sorted({r["state"] for r in runs})
    fig = go.Figure()
    for k, state in enumerate(states):
        mine = [r for r in runs if r["state"] == state]
        fig.add_trace(
            go.Bar(
                base=[r["start"] for r in mine],
                x=[(r["end"] - r["start"]).total_seconds() * 1000 for r in mine],
                y=[r["key"] for r in mine],
                orientation="h",
                name=state,
                marker={"color": _state_colour(state, colours[k % len(colours)])},
                hovertext=[
                    f"{r['key']}: {state} from {r['start']:%H:%M} to {r['end']:%H:%M}" for r in mine
                ],
                hoverinfo="text",
            )
        )
    keys = sorted({r["key"] for r in runs})
    fig.update_layout(
        template=th.template(theme),
        barmode="overlay",
        height=max(160, 34 * len(keys) + 90),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        uirevision=revision,
        xaxis={"type": "date"},
        yaxis={"automargin": True},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


_STATE_COLOURS = {
    "RUNNING": "#009E73",
    "FINISHED": "#56B4E9",
    "STARTING": "#F0E442",
    "INSTALLED": "#0072B2",
    "ERRORED": "#D55E00",
    "BROKEN": "#CC79A7",
    "STOPPING": "#E69F00",
    "NEW": "#999999",
    "SUCCEEDED": "#009E73",
    "FAILED": "#D55E00",
    "IN_PROGRESS": "#F0E442",
    "CANCELED": "#999999",
}


def _state_colour(state: str, fallback: str) -> str:
    return _STATE_COLOURS.get(state.upper(), fallback)


def state_runs(
    series: Sequence[Mapping[str, Any]], *, key_label: str, state_label: str
) -> list[dict[str, Any]]:
    """Consecutive runs of the state that reads 1, per component: ``[{key, state, start, end}]``."""
    at: dict[str, dict[datetime, str]] = defaultdict(dict)
    for s in series:
        labels = s.get("labels") or {}
        key, state = labels.get(key_label), labels.get(state_label)
        if key is None or state is None:
            continue
        for t, v in zip(s.get("timestamps", []), s.get("values", []), strict=False):
            when = _to_datetime(t)
            if when is not None and v is not None and v >= 0.5:
                at[key][when] = state
    runs: list[dict[str, Any]] = []
    for key, points in at.items():
        times = sorted(points)
        step = min((b - a for a, b in itertools.pairwise(times)), default=None)
        step = step or timedelta(minutes=1)
        for t in times:
            state = points[t]
            last = runs[-1] if runs and runs[-1]["key"] == key else None
            if last and last["state"] == state and t - last["end"] <= step * 1.5:
                last["end"] = t + step
            else:
                runs.append({"key": key, "state": state, "start": t, "end": t + step})
    return runs


def peer_comparison(
    peers: Sequence[Row], device_id: str, metric: str, theme: th.Theme = "light"
) -> go.Figure:
    """This device's latest value against every peer in its cohort (box and points)."""
    points = [(str(p.get("device_id") or p.get("device")), p.get("value")) for p in peers]
    factor, _ = display_scale(metric)
    points = [(d, float(v) * factor) for d, v in points if v is not None]
    if not points:
        return _empty(f"no cohort values for {metric}", theme, height=160)
    fig = go.Figure(
        go.Box(
            x=[v for _, v in points],
            text=[d for d, _ in points],
            name="cohort",
            boxpoints="all",
            jitter=0.5,
            pointpos=0,
            orientation="h",
            marker={"color": "#56B4E9", "size": 6},
            line={"color": "#0072B2"},
            hovertemplate="%{text}: %{x}<extra></extra>",
        )
    )
    mine = [v for d, v in points if d == device_id]
    if mine:
        fig.add_trace(
            go.Scatter(
                x=mine,
                y=["cohort"],
                mode="markers",
                name=device_id,
                marker={
                    "color": "#D55E00",
                    "size": 16,
                    "symbol": "diamond",
                    "line": {"width": 1, "color": "#000000"},
                },
                hovertemplate=f"{device_id}: %{{x}}<extra></extra>",
            )
        )
    fig.update_layout(
        template=th.template(theme),
        height=180,
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
        xaxis={"title": _panel_title(metric)},
        yaxis={"visible": False},
        legend={"orientation": "h", "y": -0.5},
    )
    return fig
