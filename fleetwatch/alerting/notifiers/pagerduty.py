"""PagerDuty Events API v2: trigger, acknowledge and resolve one incident per alert group."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from fleetwatch.alerting.notifiers._common import (
    SEVERITY_ORDER,
    dumps,
    link,
    rfc3339,
    title,
    truncate,
    worst_severity,
)
from fleetwatch.plugins.notifier import Notification, Notifier, OutboundRequest

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_MAX = 255


class PagerDutyConfig(BaseModel):
    model_config = {"extra": "forbid"}

    routing_key: SecretStr = Field(..., description="integration (routing) key of the service")
    url: str = Field(EVENTS_URL, description="Events API v2 enqueue endpoint")
    source: str = Field("fleetwatch", description="payload.source when no device is involved")
    client: str = Field("fleetwatch", description="shown as the event's client")


def dedup_key(group_key: str) -> str:
    """Stable per group, well under PagerDuty's 255 characters whatever the labels are."""
    return "fleetwatch-" + hashlib.sha256(group_key.encode()).hexdigest()[:40]


def event_action(n: Notification) -> str:
    if n.status == "resolved":
        return "resolve"
    return "acknowledge" if n.acknowledged else "trigger"


def pagerduty_event(n: Notification, cfg: PagerDutyConfig) -> dict[str, Any]:
    action = event_action(n)
    event: dict[str, Any] = {
        "routing_key": cfg.routing_key.get_secret_value(),
        "event_action": action,
        "dedup_key": dedup_key(n.group_key)[:DEDUP_MAX],
    }
    if action != "trigger":
        return event
    firing = n.firing
    severity = worst_severity(firing)
    devices = sorted({a.labels["device"] for a in firing if a.labels.get("device")})
    event["payload"] = {
        "summary": truncate(
            f"{title(n)}: " + "; ".join(a.annotations.get("summary", "") for a in firing[:5]),
            SUMMARY_MAX,
        ),
        "source": devices[0] if len(devices) == 1 else n.group_labels.get("site", cfg.source),
        "severity": severity if severity in SEVERITY_ORDER else "warning",
        "timestamp": rfc3339(min(a.starts_at for a in firing)),
        "group": n.group_labels.get("site", ""),
        "class": n.common_labels.get("alertname", ""),
        "custom_details": {
            "firing": len(firing) + n.truncated_alerts,
            "group_labels": dict(n.group_labels),
            "alerts": [
                {"labels": dict(a.labels), "summary": a.annotations.get("summary", "")}
                for a in firing[:20]
            ],
        },
    }
    event["client"] = cfg.client
    event["client_url"] = n.external_url
    event["links"] = [{"href": link(n), "text": "Open in fleetwatch"}]
    return event


class PagerDutyNotifier(Notifier):
    name: ClassVar[str] = "pagerduty"
    config_model: ClassVar[type[BaseModel]] = PagerDutyConfig
    config: PagerDutyConfig

    def destination_url(self) -> str:
        return self.config.url

    def build(self, notification: Notification) -> OutboundRequest:
        body = dumps(pagerduty_event(notification, self.config))
        return OutboundRequest(self.config.url, body, {"Content-Type": "application/json"})
