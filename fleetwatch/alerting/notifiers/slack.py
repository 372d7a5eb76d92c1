"""Slack incoming webhook with Block Kit. The smallest complete notifier: copy this one."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from fleetwatch.alerting.notifiers._common import alert_line, dumps, link, title, truncate
from fleetwatch.plugins.notifier import Notification, Notifier, OutboundRequest


class SlackConfig(BaseModel):
    model_config = {"extra": "forbid"}

    webhook_url: SecretStr = Field(..., description="incoming webhook URL (it is a secret)")
    max_listed: int = Field(10, ge=1, le=40, description="alerts listed in the message")


def slack_payload(n: Notification, *, max_listed: int = 10) -> dict[str, Any]:
    """Block Kit message: header, one section per alert (bounded), context and a button."""
    head = title(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(head, 150)}}
    ]
    for a in n.alerts[:max_listed]:
        icon = ":white_check_mark:" if a.status == "resolved" else ":rotating_light:"
        text = f"{icon} *{alert_line(a)}*"
        if a.annotations.get("description"):
            text += "\n" + a.annotations["description"]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}})
    more = len(n.alerts) - max_listed + n.truncated_alerts
    if more > 0:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in fleetwatch"},
                    "url": link(n),
                }
            ],
        }
    )
    return {"text": truncate(head, 3000), "blocks": blocks}


class SlackNotifier(Notifier):
    name: ClassVar[str] = "slack"
    config_model: ClassVar[type[BaseModel]] = SlackConfig
    config: SlackConfig

    def destination_url(self) -> str:
        return self.config.webhook_url.get_secret_value()

    def build(self, notification: Notification) -> OutboundRequest:
        body = dumps(slack_payload(notification, max_listed=self.config.max_listed))
        return OutboundRequest(self.destination_url(), body, {"Content-Type": "application/json"})
