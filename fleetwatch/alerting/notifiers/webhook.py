"""Generic webhook, signed with HMAC-SHA256 so the receiver can prove it came from fleetwatch.

The body is the Alertmanager version "4" message. Headers::

    X-Fleetwatch-Timestamp: 1764876000            (unix seconds when the request was built)
    X-Fleetwatch-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A receiver recomputes the HMAC over the raw body bytes, compares in constant time and rejects a
timestamp more than five minutes away from its clock (a replayed request); see
:func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr

from fleetwatch.alerting.notifiers._common import dumps, v4_message
from fleetwatch.plugins.notifier import Notification, Notifier, OutboundRequest

TIMESTAMP_HEADER = "X-Fleetwatch-Timestamp"
SIGNATURE_HEADER = "X-Fleetwatch-Signature"
TOLERANCE_S = 300


class WebhookConfig(BaseModel):
    model_config = {"extra": "forbid"}

    url: SecretStr = Field(..., description="receiver URL (may embed a token)")
    secret: SecretStr = Field(..., min_length=16, description="shared HMAC key")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    *,
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """What a receiver runs: True only for an untampered body signed within the tolerance."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    # a header may carry several signatures during key rotation: "v1=aa, v1=bb"
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


class WebhookNotifier(Notifier):
    name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    config: WebhookConfig

    def destination_url(self) -> str:
        return self.config.url.get_secret_value()

    def build(self, notification: Notification) -> OutboundRequest:
        body = dumps(v4_message(notification))
        ts = int(notification.timestamp.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fleetwatch",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self.config.secret.get_secret_value().encode(), ts, body),
        }
        return OutboundRequest(self.destination_url(), body, headers)
