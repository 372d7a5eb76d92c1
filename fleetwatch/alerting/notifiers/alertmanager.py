"""Alertmanager-compatible webhook (version "4" payload), for receivers built for Alertmanager."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr

from fleetwatch.alerting.notifiers._common import dumps, v4_message
from fleetwatch.plugins.notifier import Notification, Notifier, OutboundRequest


class AlertmanagerWebhookConfig(BaseModel):
    model_config = {"extra": "forbid"}

    url: SecretStr = Field(..., description="receiver URL (may embed a token)")
    bearer_token: SecretStr | None = Field(None, description="sent as Authorization: Bearer")


class AlertmanagerWebhookNotifier(Notifier):
    name: ClassVar[str] = "alertmanager"
    config_model: ClassVar[type[BaseModel]] = AlertmanagerWebhookConfig
    config: AlertmanagerWebhookConfig

    def destination_url(self) -> str:
        return self.config.url.get_secret_value()

    def build(self, notification: Notification) -> OutboundRequest:
        headers = {"Content-Type": "application/json", "User-Agent": "fleetwatch"}
        if self.config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.config.bearer_token.get_secret_value()}"
        return OutboundRequest(self.destination_url(), dumps(v4_message(notification)), headers)
