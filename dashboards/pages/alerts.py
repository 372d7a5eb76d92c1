"""Alerts: filter, acknowledge with an expiry, silence from an alert (matchers pre-filled from its
labels), and the delivery log of notifications."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import ui, words
from dashboards.client import ApiError, FleetwatchClient

STATES = ("firing", "pending", "flapping", "resolved")
SEVERITIES = ("critical", "error", "warning", "info")
DURATIONS = {"1h": 1, "4h": 4, "24h": 24, "7d": 24 * 7}  # hours
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def layout(query: dict[str, list[str]]) -> html.Div:
    duration_options = [{"label": f"for {k}", "value": k} for k in DURATIONS]
    return html.Div(
        [
            dcc.Store(id="al-data"),
            dcc.Store(id="al-changed", data=0),
            html.Div(id="al-banner", className="banner"),
            html.Div(
                [
                    dcc.Checklist(id="al-state", options=list(STATES), inline=True,
                                  value=query.get("state", ["firing", "pending"]),
                                  className="filter-states"),
                    dcc.Checklist(id="al-severity", options=list(SEVERITIES), inline=True,
                                  value=query.get("severity", []), className="filter-states"),
                    dcc.Input(id="al-device", placeholder="device", debounce=True,
                              value=ui.first(query, "device", ""), className="filter"),
                ],
                className="filters",
            ),
            ui.section(
                "Alerts",
                html.Div(
                    [html.Span("acknowledge "),
                     dcc.Dropdown(id="al-ack-for", options=duration_options, value="4h",
                                  clearable=False, className="filter filter-small"),
                     dcc.Input(id="al-ack-comment", placeholder="comment (optional)",
                               className="filter")],
                    className="filters",
                ),
                html.Div(id="al-message", className="message"),
                html.Div(id="al-table"),
            ),
            ui.section(
                "Silence",
                html.P("Alerts matching every matcher stay quiet until the silence ends.",
                       className="hint"),
                dcc.Textarea(id="al-sil-matchers", placeholder='device="jetson-ber-0001"',
                             className="matchers"),
                html.Div(
                    [dcc.Dropdown(id="al-sil-for", options=duration_options, value="4h",
                                  clearable=False, className="filter filter-small"),
                     dcc.Input(id="al-sil-comment", placeholder="why (required)",
                               className="filter filter-wide"),
                     html.Button("create silence", id="al-sil-create", className="button")],
                    className="filters",
                ),
                html.Div(id="al-sil-result", className="message"),
                html.Div(id="al-silences"),
                id="al-silence-card",
            ),
            ui.section("Delivery log", html.Div(id="al-deliveries")),
        ]
    )  # fmt: skip


def _acknowledged(alert: dict[str, Any]) -> str:
    until = alert.get("ack_expires_at")
    if not alert.get("acknowledged", alert.get("acknowledged_at")):
        return ""
    who = alert.get("acknowledged_by") or "someone"
    return f"acknowledged by {who} until {words.clock(until)}" if until else f"by {who}"


def _buttons(alert: dict[str, Any]) -> html.Div:
    alert_id = str(alert.get("fingerprint") or alert.get("id"))
    ack = (
        html.Span(_acknowledged(alert), className="acked")
        if _acknowledged(alert)
        else html.Button("acknowledge", id={"type": "al-ack", "alert": alert_id},
                         className="button button-small ack")
    )  # fmt: skip
    silence = html.Button(
        "silence…", id={"type": "al-silence", "alert": alert_id}, className="button button-small"
    )
    return html.Div([ack, silence], className="row-buttons")


def alerts_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("severity", lambda r: ui.badge(str(r.get("severity", "")))),
            ("alert", "rule"),
            ("state", lambda r: ui.badge(str(r.get("state", "")))),
            ("device", lambda r: ui.device_link(r.get("device"))),
            ("summary", lambda r: (r.get("annotations") or {}).get("summary")),
            ("since", lambda r: words.ago(r.get("starts_at") or r.get("active_at"))),
            ("", _buttons),
        ],
        empty="no alerts match these filters",
        id="al-rows",
        row_class=lambda r: "row-acked" if _acknowledged(r) else "",
    )


def filter_alerts(
    rows: list[dict[str, Any]], *, states: list[str], severities: list[str], device: str
) -> list[dict[str, Any]]:
    """Alerts in the chosen states and severities of a device (empty choices keep all)."""
    return [
        r
        for r in rows
        if (not states or r.get("state") in states)
        and (not severities or r.get("severity") in severities)
        and (not device or device in str(r.get("device") or ""))
    ]


def matchers_for(alert: dict[str, Any]) -> str:
    """The silence matchers an alert suggests: its rule and its labels, one per line."""
    labels = {"alertname": alert.get("rule"), **(alert.get("labels") or {})}
    for key in ("device", "site"):
        if alert.get(key):
            labels.setdefault(key, alert[key])
    return "\n".join(f'{k}="{v}"' for k, v in labels.items() if v not in (None, ""))


def parse_matchers(text: str) -> list[dict[str, str]]:
    """``name="value"`` lines (ops ``=``, ``!=``, ``=~``, ``!~``) as the API's matcher dicts."""
    out = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        match = _MATCHER.match(line)
        if match is None:
            raise ValueError(f'cannot read matcher {line.strip()!r}; write name="value"')
        out.append({"name": match[1], "op": match[2], "value": match[3]})
    return out


def _deliveries(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows[:50],
        [
            ("when", lambda r: words.clock(r.get("created_at"))),
            ("receiver", "receiver"),
            (
                "about",
                lambda r: f"{r.get('status')} ({r.get('reason')}), {r.get('alert_count')} alerts",
            ),
            ("delivery", lambda r: ui.badge(str(r.get("delivery_state", "")))),
            ("attempts", "attempts"),
            ("last attempt", _last_attempt),
        ],
        empty="no notifications sent yet",
    )


def _last_attempt(notification: dict[str, Any]) -> str | None:
    attempts = notification.get("deliveries") or []
    if not attempts:
        return None
    last = attempts[-1]
    code = f" HTTP {last['status_code']}" if last.get("status_code") else ""
    error = f": {last['error']}" if last.get("error") else ""
    return f"{last.get('outcome')} to {last.get('destination')}{code}{error}"


def _silences(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("matchers", lambda r: ", ".join(f'{m["name"]}{m["op"]}"{m["value"]}"'
                                             for m in r.get("matchers") or [])),
            ("until", lambda r: words.clock(r.get("ends_at"))),
            ("by", "created_by"),
            ("why", "comment"),
        ],
        empty="no active silences",
    )  # fmt: skip


def register(app: Dash, client: FleetwatchClient) -> None:
    @app.callback(
        Output("al-banner", "children"),
        Output("al-table", "children"),
        Output("al-data", "data"),
        Output("al-silences", "children"),
        Output("al-deliveries", "children"),
        Input("refresh", "n_intervals"),
        Input("al-state", "value"),
        Input("al-severity", "value"),
        Input("al-device", "value"),
        Input("al-changed", "data"),
    )
    def _refresh(
        _: int, states: list[str], severities: list[str], device: str | None, __: int
    ) -> tuple[Any, ...]:
        errors = ui.Errors()
        params = {"state": states[0] if len(states or []) == 1 else None, "device": device}
        got = errors.gather({
            "alerts": (partial(client.alerts, **params), [], "alerts"),
            "silences": (client.silences, [], "silences"),
            "deliveries": (client.deliveries, [], "delivery log"),
        })  # fmt: skip
        rows = filter_alerts(
            got["alerts"], states=states or [], severities=severities or [], device=device or ""
        )
        silences, deliveries = got["silences"], got["deliveries"]
        by_id = {str(r.get("fingerprint") or r.get("id")): r for r in rows}
        return (ui.banner(errors), alerts_table(rows), by_id, _silences(silences),
                _deliveries(deliveries))  # fmt: skip

    @app.callback(
        Output("al-changed", "data", allow_duplicate=True),
        Output("al-message", "children"),
        Input({"type": "al-ack", "alert": ALL}, "n_clicks"),
        State("al-ack-for", "value"),
        State("al-ack-comment", "value"),
        State("al-changed", "data"),
        prevent_initial_call=True,
    )
    def _acknowledge(
        clicks: list[int | None], span: str, comment: str | None, changed: int
    ) -> tuple[Any, Any]:
        if not ctx.triggered_id or not any(clicks):
            return no_update, no_update
        alert_id = ctx.triggered_id["alert"]
        until = datetime.now(tz=UTC) + timedelta(hours=DURATIONS.get(span, 4))
        try:
            client.acknowledge(alert_id, expires_at=until, comment=comment or "")
        except ApiError as exc:
            return no_update, f"could not acknowledge alert {alert_id}: {exc}"
        return (
            changed or 0
        ) + 1, f"alert {alert_id} acknowledged until {words.clock(until.isoformat())}"

    @app.callback(
        Output("al-sil-matchers", "value"),
        Output("al-sil-comment", "value"),
        Input({"type": "al-silence", "alert": ALL}, "n_clicks"),
        State("al-data", "data"),
        prevent_initial_call=True,
    )
    def _prefill(clicks: list[int | None], alerts: dict[str, Any] | None) -> tuple[Any, Any]:
        if not ctx.triggered_id or not any(clicks):
            return no_update, no_update
        fingerprint = str(ctx.triggered_id["alert"])
        alert = (alerts or {}).get(fingerprint)
        if alert is None:
            return no_update, no_update
        try:  # the API knows which labels identify the alert; the dashboard's guess is a fallback
            text = "\n".join(
                f'{m["name"]}{m["op"]}"{m["value"]}"' for m in client.silence_matchers(fingerprint)
            )
        except ApiError:
            text = matchers_for(alert)
        return text, f"silenced from alert {alert.get('rule')} on {alert.get('device')}"

    @app.callback(
        Output("al-sil-result", "children"),
        Output("al-changed", "data", allow_duplicate=True),
        Input("al-sil-create", "n_clicks"),
        State("al-sil-matchers", "value"),
        State("al-sil-for", "value"),
        State("al-sil-comment", "value"),
        State("al-changed", "data"),
        prevent_initial_call=True,
    )
    def _silence(_: int, text: str, span: str, comment: str | None, changed: int) -> tuple:
        try:
            matchers = parse_matchers(text)
        except ValueError as exc:
            return str(exc), no_update
        if not matchers or not (comment or "").strip():
            return "a silence needs at least one matcher and a reason", no_update
        now = datetime.now(tz=UTC)
        try:
            client.create_silence(
                matchers=matchers,
                starts_at=now,
                ends_at=now + timedelta(hours=DURATIONS.get(span, 4)),
                comment=comment or "",
            )
        except ApiError as exc:
            return f"could not create the silence: {exc}", no_update
        return f"silence created for {span}", (changed or 0) + 1  # fmt: skip

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("al-state", "value"),
        Input("al-severity", "value"),
        Input("al-device", "value"),
        prevent_initial_call=True,
    )
    def _remember(states: list[str], severities: list[str], device: str | None) -> str:
        return ui.to_search({"state": states or [], "severity": severities or [],
                             "device": device})  # fmt: skip
