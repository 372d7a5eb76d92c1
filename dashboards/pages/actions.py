"""Actions: approvals waiting for a person, the audit log of decisions with their reasons, and
the cordons, drains and upgrade holds fleetwatch currently keeps."""

from __future__ import annotations

from functools import partial
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import ui, words
from dashboards.client import ApiError, FleetwatchClient


def layout(query: dict[str, list[str]]) -> html.Div:
    return html.Div(
        [
            # Actions decided here: the list may be read before the API has committed a decision.
            dcc.Store(id="ac-changed", data=[]),
            html.Div(id="ac-banner", className="banner"),
            ui.section(
                "Waiting for approval",
                html.Div(
                    [dcc.Input(id="ac-reason", placeholder="reason for your decision",
                               className="filter filter-wide")],
                    className="filters",
                ),
                html.Div(id="ac-message", className="message"),
                html.Div(id="ac-pending"),
            ),
            ui.section("Cordons, drains and holds", html.Div(id="ac-holds")),
            ui.section("Pauses", html.Div(id="ac-pauses")),
            ui.section(
                "Audit log",
                dcc.Input(id="ac-device", placeholder="device", debounce=True,
                          value=ui.first(query, "device", ""), className="filter"),
                html.Div(id="ac-audit"),
            ),
        ]
    )  # fmt: skip


def _decide_buttons(action: dict[str, Any]) -> html.Div:
    action_id = str(action.get("id"))
    return html.Div(
        [
            html.Button("approve", id={"type": "ac-approve", "action": action_id},
                        className="button button-small approve"),
            html.Button("reject", id={"type": "ac-reject", "action": action_id},
                        className="button button-small reject"),
        ],
        className="row-buttons",
    )  # fmt: skip


def pending_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("action", "kind"),
            ("device", lambda r: ui.device_link(r.get("device_id"))),
            ("site", "site_id"),
            ("policy", "policy"),
            ("why", lambda r: "; ".join(r.get("reasons") or [])),
            ("lead time", lambda r: words.duration(r["lead_time_s"]) if r.get("lead_time_s")
             else None),
            ("proposed", lambda r: words.ago(r.get("created_at"))),
            ("", _decide_buttons),
        ],
        empty="no action waits for approval",
        id="ac-pending-rows",
    )  # fmt: skip


def audit_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows[:100],
        [
            ("when", lambda r: words.clock(r.get("at"))),
            ("event", lambda r: ui.badge(str(r.get("event", "")))),
            ("action", "kind"),
            ("device", lambda r: ui.device_link(r.get("device_id"))),
            ("by", "actor"),
            ("reasons", lambda r: "; ".join(r.get("reasons") or [])),
        ],
        empty="no decisions recorded yet",
        id="ac-audit-rows",
    )


def _held(row: dict[str, Any]) -> str:
    parts = []
    if row.get("cordoned"):
        parts.append("cordoned")
    if row.get("draining"):
        parts.append("draining")
    elif row.get("drained_at"):
        parts.append("drained")
    if row.get("held"):
        until = row.get("hold_expires_at")
        parts.append(f"upgrades held until {words.clock(until)}" if until else "upgrades held")
    return ", ".join(parts) or str(row.get("kind") or "")


def holds_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("device", lambda r: ui.device_link(r.get("device_id"))),
            ("site", "site_id"),
            ("what", _held),
            ("since", lambda r: words.ago(r.get("held_at") or r.get("cordoned_at")
                                          or r.get("drain_started_at"))),
        ],
        empty="no device is cordoned, drained or held",
    )  # fmt: skip


def pauses_table(rows: list[dict[str, Any]]) -> html.Div:
    return ui.table(
        rows,
        [
            ("pause", "name"),
            ("where", lambda r: r.get("site_id") or "every site"),
            ("why", "reason"),
            ("by", "created_by"),
            (
                "until",
                lambda r: words.clock(r["expires_at"]) if r.get("expires_at") else "lifted by hand",
            ),
        ],
        empty="actions are not paused anywhere",
    )


def register(app: Dash, client: FleetwatchClient) -> None:
    @app.callback(
        Output("ac-banner", "children"),
        Output("ac-pending", "children"),
        Output("ac-holds", "children"),
        Output("ac-pauses", "children"),
        Output("ac-audit", "children"),
        Input("refresh", "n_intervals"),
        Input("ac-changed", "data"),
        Input("ac-device", "value"),
    )
    def _refresh(_: int, decided: list[str] | None, device: str | None) -> tuple[Any, ...]:
        errors = ui.Errors()
        got = errors.gather({
            "pending": (partial(client.actions, state="pending"), [], "actions"),
            "holds": (client.holds, [], "holds"),
            "drains": (client.drains, [], "drains"),
            "pauses": (client.pauses, [], "pauses"),
            "audit": (partial(client.audit, device=device or None), [], "audit log"),
        })  # fmt: skip
        done = set(decided or [])
        pending = [a for a in got["pending"] if a.get("state", "pending") == "pending"
                   and str(a.get("id")) not in done]  # fmt: skip
        holds = list({row.get("device_id"): row for row in got["holds"] + got["drains"]}.values())
        pauses, audit = got["pauses"], got["audit"]
        if device:
            audit = [a for a in audit if device in str(a.get("device_id") or "")]
        return (ui.banner(errors), pending_table(pending), holds_table(holds),
                pauses_table(pauses), audit_table(audit))  # fmt: skip

    @app.callback(
        Output("ac-changed", "data"),
        Output("ac-message", "children"),
        Input({"type": "ac-approve", "action": ALL}, "n_clicks"),
        Input({"type": "ac-reject", "action": ALL}, "n_clicks"),
        State("ac-reason", "value"),
        State("ac-changed", "data"),
        prevent_initial_call=True,
    )
    def _decide(approvals: list, rejections: list, reason: str | None, decided: list) -> tuple:
        trigger = ctx.triggered_id
        if not trigger or not any([*approvals, *rejections]):
            return no_update, no_update
        approve = trigger["type"] == "ac-approve"
        verb = "approved" if approve else "rejected"
        if not approve and not (reason or "").strip():
            return no_update, "say why you reject it: the reason goes to the audit log"
        try:
            client.decide(trigger["action"], approve=approve, reason=reason or "")
        except ApiError as exc:
            return no_update, f"could not decide action {trigger['action']}: {exc}"
        return [*(decided or []), str(trigger["action"])], f"action {trigger['action']} {verb}"
