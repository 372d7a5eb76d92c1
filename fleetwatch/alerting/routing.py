"""The routing tree, inhibition and maintenance windows: pure decisions over label sets.

Routing follows Alertmanager: the root matches every alert; an alert descends into the first
child whose matchers all match, and keeps trying later siblings only when that child has
``continue: true``. A node where no child matched is where the alert lands. Children inherit
receiver, ``group_by`` and the three timers from their parent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetwatch.alerting.matchers import Duration, MatcherField, matches_all

ALL_LABELS = "..."


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    receiver: str | None = None
    matchers: list[MatcherField] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait_s: Duration | None = Field(None, alias="group_wait")
    group_interval_s: Duration | None = Field(None, alias="group_interval")
    repeat_interval_s: Duration | None = Field(None, alias="repeat_interval")
    continue_: bool = Field(False, alias="continue")
    escalate_after_s: Duration | None = Field(
        None, alias="escalate_after", description="page escalate_to when unacknowledged this long"
    )
    escalate_to: str | None = None
    routes: list[Route] = Field(default_factory=list)


class InhibitRule(BaseModel):
    """Firing source alerts mute target alerts that share the ``equal`` labels."""

    model_config = ConfigDict(extra="forbid")

    source_matchers: list[MatcherField]
    target_matchers: list[MatcherField]
    equal: list[str] = Field(default_factory=list)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(BaseModel):
    """A one-off (``start``/``end``) or weekly (``weekdays``, ``at``, ``duration``) window.

    Alerts of the listed sites (all sites when empty) that match ``matchers`` are muted while
    the window is open; resolves still go out, as with silences.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    sites: list[str] = Field(default_factory=list)
    matchers: list[MatcherField] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    weekdays: list[Weekday] = Field(default_factory=list)
    at: time | None = Field(None, description="local start time of a weekly window")
    duration_s: Duration | None = Field(None, alias="duration")
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceWindow:
        one_off = self.start is not None and self.end is not None
        weekly = bool(self.weekdays) and self.at is not None and self.duration_s is not None
        if one_off == weekly:
            raise ValueError("give either start and end, or weekdays, at and duration")
        ZoneInfo(self.timezone)
        return self

    def is_open(self, now: datetime) -> bool:
        if self.start is not None and self.end is not None:
            return self.start <= now < self.end
        assert self.at is not None and self.duration_s is not None
        local = now.astimezone(ZoneInfo(self.timezone))
        days_back = int(self.duration_s // 86400) + 1
        for back in range(days_back + 1):
            day = local.date() - timedelta(days=back)
            if _WEEKDAYS[day.weekday()] not in self.weekdays:
                continue
            opens = datetime.combine(day, self.at, tzinfo=local.tzinfo)
            if opens <= local < opens + timedelta(seconds=self.duration_s):
                return True
        return False

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        if self.sites and labels.get("site") not in self.sites:
            return False
        return matches_all(self.matchers, labels) and self.is_open(now)


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """A route node with everything inherited filled in."""

    path: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    escalate_after_s: float | None
    escalate_to: str | None
    continue_: bool
    matchers: tuple[object, ...] = ()
    children: tuple[ResolvedRoute, ...] = field(default=())


DEFAULT_TIMERS = {"group_wait_s": 30.0, "group_interval_s": 300.0, "repeat_interval_s": 14400.0}


def compile_routes(root: Route) -> ResolvedRoute:
    """Resolve inheritance once; the root must name a receiver."""
    if root.receiver is None:
        raise ValueError("route: the root route needs a receiver")
    return _compile(root, None, "0")


def _compile(node: Route, parent: ResolvedRoute | None, path: str) -> ResolvedRoute:
    def pick(name: str) -> float:
        own = getattr(node, name)
        if own is not None:
            return float(own)
        return float(getattr(parent, name)) if parent is not None else DEFAULT_TIMERS[name]

    base = ResolvedRoute(
        path=path,
        receiver=node.receiver or (parent.receiver if parent else ""),
        group_by=tuple(node.group_by)
        if node.group_by is not None
        else (parent.group_by if parent else ("alertname",)),
        group_wait_s=pick("group_wait_s"),
        group_interval_s=pick("group_interval_s"),
        repeat_interval_s=pick("repeat_interval_s"),
        escalate_after_s=node.escalate_after_s
        if node.escalate_after_s is not None
        else (parent.escalate_after_s if parent else None),
        escalate_to=node.escalate_to or (parent.escalate_to if parent else None),
        continue_=node.continue_,
        matchers=tuple(node.matchers),
    )
    children = tuple(_compile(child, base, f"{path}.{i}") for i, child in enumerate(node.routes))
    return replace(base, children=children)


def match_routes(root: ResolvedRoute, labels: Mapping[str, str]) -> list[ResolvedRoute]:
    """The routes an alert lands on (several when ``continue`` lets it)."""
    found: list[ResolvedRoute] = []
    for child in root.children:
        if matches_all(child.matchers, labels):  # type: ignore[arg-type]
            found.extend(match_routes(child, labels))
            if not child.continue_:
                break
    return found or [root]


def walk(root: ResolvedRoute) -> Iterable[ResolvedRoute]:
    yield root
    for child in root.children:
        yield from walk(child)


def group_labels(route: ResolvedRoute, labels: Mapping[str, str]) -> dict[str, str]:
    if ALL_LABELS in route.group_by:
        return dict(labels)
    return {name: labels[name] for name in route.group_by if name in labels}


def group_key(route: ResolvedRoute, grouping: Mapping[str, str]) -> str:
    """Stable id of a group, in Alertmanager's spirit: route path, receiver, label values."""
    return f"{route.path}:{route.receiver}:" + json.dumps(
        dict(sorted(grouping.items())), separators=(",", ":"), ensure_ascii=False
    )


def inhibited(rules: Sequence[InhibitRule], firing: Mapping[str, Mapping[str, str]]) -> set[str]:
    """Fingerprints of firing alerts muted by another firing alert (one pass per rule).

    An alert that matches both sides of a rule never inhibits itself, as in Alertmanager.
    """
    muted: set[str] = set()
    for rule in rules:
        sources: dict[tuple[str, ...], set[str]] = {}
        for fp, labels in firing.items():
            if matches_all(rule.source_matchers, labels):
                key = tuple(labels.get(name, "") for name in rule.equal)
                sources.setdefault(key, set()).add(fp)
        if not sources:
            continue
        for fp, labels in firing.items():
            if not matches_all(rule.target_matchers, labels):
                continue
            key = tuple(labels.get(name, "") for name in rule.equal)
            holders = sources.get(key)
            if holders and holders - {fp}:
                muted.add(fp)
    return muted
