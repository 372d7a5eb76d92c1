"""Helpers shared by the notifier payload builders (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fleetwatch.plugins.notifier import Notification, NotificationAlert

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert that still fires
SEVERITY_ORDER = ("critical", "error", "warning", "info")


def rfc3339(ts: datetime | None) -> str:
    if ts is None:
        return ZERO_TIME
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def worst_severity(alerts: tuple[NotificationAlert, ...]) -> str:
    found = {a.labels.get("severity", "warning") for a in alerts}
    return next((s for s in SEVERITY_ORDER if s in found), "warning")


def title(n: Notification) -> str:
    """``[FIRING:3] DeviceSilent ber-1`` - Alertmanager's customary subject line."""
    label_text = " ".join(n.group_labels[k] for k in sorted(n.group_labels))
    count = len(n.firing) if n.status == "firing" else len(n.resolved)
    state = "ACKNOWLEDGED" if n.acknowledged else n.status.upper()
    return f"[{state}:{count + (n.truncated_alerts if n.status == 'firing' else 0)}] {label_text}"


def alert_line(a: NotificationAlert) -> str:
    summary = a.annotations.get("summary") or a.labels.get("alertname", "alert")
    mark = "resolved" if a.status == "resolved" else a.labels.get("severity", "")
    return f"{summary} ({mark})"


def link(n: Notification) -> str:
    for a in n.alerts:
        url = a.annotations.get("dashboard_url")
        if url:
            return url
    return f"{n.external_url}/alerts"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def v4_message(n: Notification) -> dict[str, Any]:
    """The Alertmanager webhook body, version "4" (every field the format defines)."""
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.truncated_alerts,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": dict(n.common_labels),
        "commonAnnotations": dict(n.common_annotations),
        "externalURL": n.external_url,
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at) if a.status == "resolved" else ZERO_TIME,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in n.alerts
        ],
    }
