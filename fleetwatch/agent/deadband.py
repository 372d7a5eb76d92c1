"""Deadband: send a sample only when it moved beyond a tolerance, or when a heartbeat is due.

Off unless rules are configured. Guarantee, per series under a rule: for every suppressed sample
at time t, the last sent sample at t' <= t satisfies ``|value - sent| <= tolerance`` and
``t - t' < heartbeat``. A receiver that holds the last value (step interpolation) is therefore
never more than ``tolerance`` off and never staler than ``heartbeat_s``. The first sample of a
series after a restart is always sent.
"""

from __future__ import annotations

import fnmatch
import math
import threading
from collections.abc import Sequence

from fleetwatch.agent.config import DeadbandRule
from fleetwatch.telemetry import Sample, SeriesKey


class Deadband:
    """Stateful per-series filter; thread-safe (collector threads share one)."""

    def __init__(self, rules: Sequence[DeadbandRule]) -> None:
        self.rules = list(rules)
        self._rule_of: dict[str, DeadbandRule | None] = {}
        self._last: dict[SeriesKey, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def rule_for(self, name: str) -> DeadbandRule | None:
        if name not in self._rule_of:
            match = next((r for r in self.rules if fnmatch.fnmatchcase(name, r.metric)), None)
            self._rule_of[name] = match
        return self._rule_of[name]

    def filter(self, samples: Sequence[Sample]) -> tuple[list[Sample], int]:
        """(samples to send, number suppressed)."""
        if not self.rules:
            return list(samples), 0
        kept: list[Sample] = []
        with self._lock:
            for s in samples:
                rule = self.rule_for(s.name)
                if rule is None or self._changed(s, rule):
                    kept.append(s)
        return kept, len(samples) - len(kept)

    def _changed(self, s: Sample, rule: DeadbandRule) -> bool:
        key = s.series
        last = self._last.get(key)
        heartbeat_ms = rule.heartbeat_s * 1000
        send = (
            last is None
            or not math.isfinite(s.value)
            or s.timestamp_ms < last[1]
            or abs(s.value - last[0]) > rule.tolerance
            or s.timestamp_ms - last[1] >= heartbeat_ms
        )
        if send:
            self._last[key] = (s.value, s.timestamp_ms)
        return send
