"""Alert rule definitions: one pydantic model per rule kind, a discriminated union, templates.

A rule file is validated as a whole on load; an error names the rule (by position and name)
and the field, e.g. ``rules.3 (DiskFull).threshold: Input should be a valid number``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetwatch.alerting.matchers import Duration, MatcherField

Severity = Literal["critical", "error", "warning", "info"]
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(ValueError):
    pass


class SafeFormatter(string.Formatter):
    """``str.format`` restricted to plain names: no attribute or index access, no conversions.

    A template such as ``{device} at {value:.1f} °C`` renders; ``{device.__class__}`` is refused
    when the rule is loaded, so a rules file cannot reach into Python objects.
    """

    def check(self, template: str) -> None:
        for _literal, field_name, _spec, conversion in self.parse(template):
            if field_name is None:
                continue
            if not _FIELD.match(field_name):
                raise TemplateError(
                    f"template field {{{field_name}}} is not a plain name "
                    "(attribute and index access are not allowed)"
                )
            if conversion is not None:
                raise TemplateError(f"template field {{{field_name}!{conversion}}}: no conversions")
            if _spec and "{" in _spec:
                raise TemplateError(f"template field {{{field_name}}}: nested format specs")


FORMATTER = SafeFormatter()


@lru_cache(maxsize=4096)
def _compiled(template: str) -> tuple[tuple[str, str | None, str], ...]:
    return tuple((lit, name, spec or "") for lit, name, spec, _conv in FORMATTER.parse(template))


def render(template: str, values: Mapping[str, Any]) -> str:
    """Render a checked template; unknown names render empty (parsed once per template)."""
    try:
        parts = _compiled(template)
    except ValueError:
        return template
    out: list[str] = []
    for literal, name, spec in parts:
        out.append(literal)
        if name is None:
            continue
        value = values.get(name, "")
        try:
            out.append(format(value, spec))
        except (ValueError, TypeError):  # e.g. {value:.1f} with a missing value
            out.append(str(value))
    return "".join(out)


class RuleBase(BaseModel):
    """Fields every rule has. ``name`` becomes the ``alertname`` label."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="alertname")
    severity: Severity = "warning"
    for_s: Duration = Field(0.0, alias="for", description="how long the condition must hold")
    labels: dict[str, str] = Field(default_factory=dict, description="added to the alert")
    summary: str = Field("{alertname} on {device}", description="one-line template")
    description: str = Field("", description="longer template")
    runbook_url: str = ""
    enabled: bool = True

    @field_validator("summary", "description", "runbook_url")
    @classmethod
    def _template(cls, v: str) -> str:
        FORMATTER.check(v)
        return v


Comparison = Literal[">", ">=", "<", "<=", "==", "!="]


class ThresholdRule(RuleBase):
    """A metric's latest value compared with a threshold, held for ``for``."""

    kind: Literal["threshold"]
    metric: str
    op: Comparison = ">"
    threshold: float
    matchers: list[MatcherField] = Field(default_factory=list, description="series filter")
    stale_after_s: Duration = Field(
        600.0, description="ignore series whose latest point is older than this"
    )


class AnomalyRule(RuleBase):
    """An open anomaly episode whose score is over a level for ``for``."""

    kind: Literal["anomaly"]
    min_score: float = Field(
        ...,
        ge=0,
        le=1,
        description="anomaly scores are in [0, 1]; an episode opens at analysis.anomaly_open (0.9)",
    )
    score: Literal["last", "peak"] = "last"
    metric: str | None = None


class PeerOutlierRule(RuleBase):
    """An open peer-outlier episode (a device unlike its cohort)."""

    kind: Literal["peer_outlier"]
    min_score: float = Field(
        0.0,
        ge=0,
        le=1,
        description="peer scores are in [0, 1]; an episode opens at analysis.peer_open (0.8)",
    )
    score: Literal["last", "peak"] = "last"
    metric: str | None = None


class ForecastRule(RuleBase):
    """A limit predicted to be crossed within ``within``, with the stated confidence.

    ``confidence: upper`` fires only when even the late end of the interval is inside the
    horizon (confident), ``point`` uses the estimate, ``lower`` fires on the early end.
    """

    kind: Literal["forecast"]
    within_s: Duration = Field(..., alias="within")
    confidence: Literal["upper", "point", "lower"] = "upper"
    metric: str | None = None
    limit_name: str | None = None


class AbsenceRule(RuleBase):
    """Silence: a device (last_seen_at), a series (latest point) or a whole site went quiet."""

    kind: Literal["absence"]
    target: Literal["device", "series", "site"] = "device"
    silent_for_s: Duration = Field(..., alias="silent_for")
    metric: str | None = Field(None, description="required for target: series")
    min_fraction: float = Field(
        0.8, gt=0, le=1, description="site target: share of its devices that must be silent"
    )
    min_devices: int = Field(2, ge=1, description="site target: smallest site considered")

    @model_validator(mode="after")
    def _series_needs_metric(self) -> AbsenceRule:
        if self.target == "series" and not self.metric:
            raise ValueError("target series needs a metric")
        return self


class ComponentStateRule(RuleBase):
    """A component reports one of ``states`` (``component_state{component,state} == 1``)."""

    kind: Literal["component_state"]
    metric: str = "component_state"
    states: list[str] = Field(default_factory=lambda: ["BROKEN", "ERRORED"])


class DeploymentStatusRule(RuleBase):
    """A deployment reports one of ``statuses`` (``deployment_status{deployment,status} == 1``)."""

    kind: Literal["deployment_status"]
    metric: str = "deployment_status"
    statuses: list[str] = Field(default_factory=lambda: ["FAILED"])


class DeviceHealthRule(RuleBase):
    """The device reports itself unhealthy (``device_healthy == 0``)."""

    kind: Literal["device_unhealthy"]
    metric: str = "device_healthy"


class RestartLoopRule(RuleBase):
    """A module restarted at least ``min_restarts`` times within ``window``."""

    kind: Literal["restart_loop"]
    metric: str = "module_restarts_total"
    window_s: Duration = Field(900.0, alias="window")
    min_restarts: int = Field(3, ge=1)


Rule = Annotated[
    ThresholdRule
    | AnomalyRule
    | PeerOutlierRule
    | ForecastRule
    | AbsenceRule
    | ComponentStateRule
    | DeploymentStatusRule
    | DeviceHealthRule
    | RestartLoopRule,
    Field(discriminator="kind"),
]
