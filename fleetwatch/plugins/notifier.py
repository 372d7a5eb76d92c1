"""The notifier contract.

A notifier turns one :class:`Notification` (a group of alerts, Alertmanager-style) into one HTTP
request to a chat, paging or webhook service. To add one:

1. Create ``fleetwatch/alerting/notifiers/<service>.py`` with a pydantic config model (described
   fields, ``SecretStr`` for every secret, including webhook URLs that embed a token) and a
   :class:`Notifier` subclass whose :meth:`Notifier.build` is a pure function of the
   notification. Copy ``fleetwatch/alerting/notifiers/slack.py`` - the smallest complete example.
2. Declare it in ``pyproject.toml`` under ``[project.entry-points."fleetwatch.notifiers"]``.
3. Test the exact payload against a real HTTP receiver on loopback.

Retries, backoff and the delivery log belong to alerting, not to the plugin: :meth:`send` makes
exactly one attempt and reports what happened.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel


class DestinationError(ValueError):
    """A notifier destination is not allowed (plain http to a host not explicitly allowed)."""


@dataclass(frozen=True, slots=True)
class NotificationAlert:
    """One alert inside a notification, in the words of Alertmanager's webhook."""

    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""
    acknowledged: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    """A group flush for one receiver: what every notifier builds its request from."""

    receiver: str
    group_key: str
    status: str  # firing when any alert fires, else resolved
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    alerts: tuple[NotificationAlert, ...]
    external_url: str
    timestamp: datetime  # when the notification is sent; signed by the generic webhook
    truncated_alerts: int = 0
    notification_id: str = ""  # idempotency key of the flush

    @property
    def firing(self) -> tuple[NotificationAlert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[NotificationAlert, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")

    @property
    def acknowledged(self) -> bool:
        """True when every firing alert is acknowledged (pagers send an acknowledge)."""
        firing = self.firing
        return bool(firing) and all(a.acknowledged for a in firing)


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A typed side effect: the request a notifier wants sent. ``url`` may hold a secret."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"

    @property
    def destination(self) -> str:
        """scheme://host[:port] only - safe to log and store."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"

    def __repr__(self) -> str:  # never print the URL or the body's secrets
        return f"OutboundRequest({self.method} {self.destination}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one attempt; ``retry_after_s`` is the server's Retry-After, if any."""

    status_code: int | None
    latency_ms: float
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """429, 5xx and transport failures are worth another try; other 4xx are not."""
        if self.status_code is None:
            return True
        return self.status_code == 429 or self.status_code >= 500


def check_destination(url: str, allowed_http_hosts: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`DestinationError` unless ``url`` is https or http to an allowed host."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and parts.hostname in allowed_http_hosts:
        return
    host = parts.hostname or "?"
    raise DestinationError(
        f"destination {parts.scheme or '?'}://{host} refused: use https, or list the host in "
        "alerting.allowed_http_hosts"
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


class Notifier(ABC):
    """Base class of every notifier plugin."""

    plugin_group: ClassVar[str] = "fleetwatch.notifiers"
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Notifier:
        return cls(cls.config_model.model_validate(dict(raw)))

    @abstractmethod
    def build(self, notification: Notification) -> OutboundRequest:
        """The request announcing ``notification``; pure, no I/O."""

    @abstractmethod
    def destination_url(self) -> str:
        """The URL requests go to (validated against the allowed hosts before any send)."""

    def send(self, request: OutboundRequest, *, client: httpx.Client) -> SendResult:
        """Make one attempt; never raises for HTTP or transport failures."""
        started = time.perf_counter()
        try:
            response = client.request(
                request.method, request.url, content=request.body, headers=dict(request.headers)
            )
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000.0
            # the exception text can contain the URL; keep the class name only
            return SendResult(None, latency, error=f"{type(exc).__name__}")
        latency = (time.perf_counter() - started) * 1000.0
        error = None if response.is_success else response.text[:500]
        return SendResult(
            response.status_code,
            latency,
            error=error,
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        )
