"""Delivering one notification: bounded retries with exponential backoff and jitter.

Retried: 429 (waiting at least its ``Retry-After``), 5xx and transport errors (timeouts,
refused connections). Not retried: any other 4xx - the request itself is wrong. A
``Retry-After`` longer than ``retry_max_s`` is not slept on: the notification is deferred to a
later dispatch (``next_attempt_at``) so one slow receiver cannot stall the others.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import httpx

from fleetwatch.plugins.notifier import Notifier, OutboundRequest, SendResult

Outcome = Literal["sent", "retry", "failed", "deferred"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, result: SendResult, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1``: equal-jitter exponential, floored by Retry-After."""
        base = min(self.max_backoff_s, self.backoff_s * float(2 ** (attempt - 1)))
        jittered = float(base / 2 + rng.uniform(0, base / 2))
        if result.retry_after_s is not None:
            return max(jittered, float(result.retry_after_s))
        return jittered


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    at: datetime
    destination: str
    status_code: int | None
    latency_ms: float
    error: str | None
    outcome: Outcome


@dataclass(slots=True)
class DeliveryOutcome:
    state: Literal["sent", "failed", "pending"]
    attempts: list[AttemptRecord] = field(default_factory=list)
    next_attempt_at: datetime | None = None


def deliver(
    notifier: Notifier,
    request: OutboundRequest,
    *,
    client: httpx.Client,
    policy: RetryPolicy,
    now: datetime,
    first_attempt: int = 1,
    sleep: Callable[[float], None],
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """Send with retries; every attempt is recorded for the delivery log."""
    rng = rng or random.Random()
    outcome = DeliveryOutcome(state="failed")
    elapsed = 0.0
    attempt = first_attempt
    while True:
        result = notifier.send(request, client=client)
        at = now + timedelta(seconds=elapsed)
        last = attempt >= policy.max_attempts
        if result.ok:
            kind: Outcome = "sent"
        elif not result.retryable or last:
            kind = "failed"
        else:
            wait = policy.delay(attempt, result, rng)
            kind = "deferred" if wait > policy.max_backoff_s else "retry"
        outcome.attempts.append(
            AttemptRecord(
                attempt,
                at,
                request.destination,
                result.status_code,
                result.latency_ms,
                result.error,
                kind,
            )
        )
        if kind == "sent":
            outcome.state = "sent"
            return outcome
        if kind == "failed":
            return outcome
        if kind == "deferred":
            outcome.state = "pending"
            outcome.next_attempt_at = at + timedelta(seconds=wait)
            return outcome
        sleep(wait)
        elapsed += wait
        attempt += 1
