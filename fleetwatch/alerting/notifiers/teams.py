"""Microsoft Teams through a Workflows webhook: an Adaptive Card in a message attachment."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from fleetwatch.alerting.notifiers._common import alert_line, dumps, link, title, truncate
from fleetwatch.plugins.notifier import Notification, Notifier, OutboundRequest

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsConfig(BaseModel):
    model_config = {"extra": "forbid"}

    webhook_url: SecretStr = Field(..., description="Workflows webhook URL (it is a secret)")
    max_listed: int = Field(10, ge=1, le=50, description="alerts listed in the card")


def adaptive_card(n: Notification, *, max_listed: int = 10) -> dict[str, Any]:
    colour = "Good" if n.status == "resolved" else "Attention"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate(title(n), 200),
            "size": "Large",
            "weight": "Bolder",
            "color": colour,
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [{"title": k, "value": v} for k, v in sorted(n.group_labels.items())],
        },
    ]
    for a in n.alerts[:max_listed]:
        body.append({"type": "TextBlock", "text": truncate(alert_line(a), 500), "wrap": True})
    more = len(n.alerts) - max_listed + n.truncated_alerts
    if more > 0:
        body.append({"type": "TextBlock", "text": f"and {more} more", "isSubtle": True})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in fleetwatch", "url": link(n)}],
        "msteams": {"width": "Full"},
    }


def teams_payload(n: Notification, *, max_listed: int = 10) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": CARD_CONTENT_TYPE,
                "contentUrl": None,
                "content": adaptive_card(n, max_listed=max_listed),
            }
        ],
    }


class TeamsNotifier(Notifier):
    name: ClassVar[str] = "teams"
    config_model: ClassVar[type[BaseModel]] = TeamsConfig
    config: TeamsConfig

    def destination_url(self) -> str:
        return self.config.webhook_url.get_secret_value()

    def build(self, notification: Notification) -> OutboundRequest:
        body = dumps(teams_payload(notification, max_listed=self.config.max_listed))
        return OutboundRequest(self.destination_url(), body, {"Content-Type": "application/json"})
