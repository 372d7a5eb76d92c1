"""Alerting's own Prometheus metrics (the default registry every process already serves)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS_SENT = Counter(
    "fleetwatch_notifications_sent_total", "Notifications delivered", ["receiver"]
)
NOTIFICATION_FAILURES = Counter(
    "fleetwatch_notification_failures_total",
    "Notifications given up on (4xx, exhausted retries, refused destination)",
    ["receiver"],
)
DELIVERY_ATTEMPTS = Counter(
    "fleetwatch_notification_attempts_total", "HTTP attempts by outcome", ["receiver", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "fleetwatch_notification_attempt_seconds", "Latency of one delivery attempt", ["receiver"]
)
