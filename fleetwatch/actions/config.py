"""Settings section `[actions]`, read only through fleetwatch.settings.

Everything here is safe by default: ``mode = "dry-run"`` plans and audits without writing, one
drain at a time per site, at most one disrupted device per site, a storm brake at 40 %.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from fleetwatch.plugins.actuator import ActionKind

_BUDGET = re.compile(r"^\d+%?$")


class PolicyCondition(BaseModel):
    """When a policy fires. Every condition given must hold (AND); give at least one."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}

    risk_1h_gte: float | None = Field(default=None, ge=0, le=1, description="risk_1h at or above")
    risk_24h_gte: float | None = Field(default=None, ge=0, le=1, description="risk_24h at or above")
    status_in: list[str] | None = Field(default=None, description="ok | warning | critical")
    forecast_within_s: float | None = Field(
        default=None, gt=0, description="a forecast will cross its limit within this many seconds"
    )
    forecast_metric: str | None = Field(
        default=None,
        description="only forecasts of this metric (fnmatch pattern, e.g. temperature_*)",
    )
    forecast_limit: str | None = Field(
        default=None, description="only this limit name (fnmatch pattern)"
    )
    alert_name: str | None = Field(
        default=None,
        description="a firing alert whose alertname matches (fnmatch) names the device",
    )
    alert_severity_in: list[str] | None = Field(default=None, description="firing alert severities")
    recovered: bool = Field(
        default=False,
        description="the device is healthy again: status ok, no forecast crossing soon",
    )

    @model_validator(mode="after")
    def _something(self) -> PolicyCondition:
        # An empty condition would match every device: refuse it (and say so in the schema).
        if not any(getattr(self, f) is not None for f in _EFFECTIVE) and not self.recovered:
            raise ValueError(f"give at least one of {', '.join(_EFFECTIVE)} or recovered=true")
        for name in ("forecast_metric", "forecast_limit"):
            if getattr(self, name) is not None and self.forecast_within_s is None:
                raise ValueError(f"{name} narrows forecast_within_s, which is missing")
        return self


_EFFECTIVE = (
    "risk_1h_gte",
    "risk_24h_gte",
    "status_in",
    "forecast_within_s",
    "alert_name",
    "alert_severity_in",
)
_NOT_NULL = {"not": {"type": "null"}}
_NEEDS_WINDOW = {
    "anyOf": [
        {"properties": {f: {"type": "null"} for f in ("forecast_metric", "forecast_limit")}},
        {"required": ["forecast_within_s"], "properties": {"forecast_within_s": _NOT_NULL}},
    ]
}
_CONDITION_SCHEMA: Any = {
    "allOf": [
        {
            "anyOf": [{"required": [f], "properties": {f: _NOT_NULL}} for f in _EFFECTIVE]
            + [{"required": ["recovered"], "properties": {"recovered": {"const": True}}}]
        },
        _NEEDS_WINDOW,
    ]
}
PolicyCondition.model_config["json_schema_extra"] = _CONDITION_SCHEMA
PolicyCondition.model_rebuild(force=True)


class Policy(BaseModel):
    """Condition → action. Policies come from settings, a policy file and the API."""

    model_config = {"extra": "forbid"}

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    action: ActionKind
    when: PolicyCondition
    sites: list[str] = Field(default_factory=list, description="only these sites; empty = all")
    enabled: bool = True
    description: str = ""


def default_policies() -> list[Policy]:
    """The built-in policies, used when neither settings nor a file name any."""
    return [
        Policy(
            name="drain-on-imminent-failure",
            action="drain",
            when=PolicyCondition(risk_1h_gte=0.8),
            description="a failure within the hour is likely: move work off first",
        ),
        Policy(
            name="cordon-on-forecast-crossing",
            action="cordon",
            when=PolicyCondition(forecast_within_s=2 * 3600),
            description="a limit (trip point, disk, memory) is forecast to be crossed within 2 h",
        ),
        Policy(
            name="cordon-on-critical-alert",
            action="cordon",
            when=PolicyCondition(alert_name="*", alert_severity_in=["critical"]),
        ),
        Policy(
            name="hold-upgrades-while-unhealthy",
            action="hold_upgrade",
            when=PolicyCondition(status_in=["warning", "critical"]),
        ),
        Policy(
            name="release-hold-on-recovery",
            action="release_hold",
            when=PolicyCondition(recovered=True),
        ),
        Policy(
            name="uncordon-on-recovery", action="uncordon", when=PolicyCondition(recovered=True)
        ),
    ]


class Budget(BaseModel):
    """How much of a site may be disrupted (cordoned or drained) at once."""

    model_config = {"extra": "forbid"}

    max_unhealthy: str = Field(
        default="1",
        description="devices disrupted at once: a count ('1') or a share of the site ('20%')",
    )
    min_healthy: str = Field(
        default="1", description="devices that must stay undisrupted: a count or a share ('50%')"
    )
    max_concurrent_drains: int = Field(default=1, ge=0, description="drains in progress at once")

    @field_validator("max_unhealthy", "min_healthy", mode="before")
    @classmethod
    def _budget(cls, v: object) -> str:
        text = str(v).strip()
        if not _BUDGET.match(text) or (text.endswith("%") and int(text[:-1]) > 100):
            raise ValueError("a count like 2 or a percentage like 25%")
        return text


class KubernetesActuatorSettings(BaseModel):
    model_config = {"extra": "forbid"}

    host: str | None = Field(default=None, description="API server URL, e.g. https://10.0.0.1:6443")
    token: SecretStr | None = Field(default=None, description="bearer token of a service account")
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file (instead of host+token)"
    )
    context: str | None = Field(default=None, description="kubeconfig context")
    verify_ssl: bool = Field(default=True, description="verify the API server certificate")
    ca_cert: Path | None = Field(default=None, description="CA bundle of the API server")
    eviction_grace_period_s: int | None = Field(
        default=None, ge=0, description="grace period sent with evictions; none = the pod's own"
    )


class GreengrassActuatorSettings(BaseModel):
    model_config = {"extra": "forbid"}

    region: str | None = Field(default=None, description="AWS region of the Greengrass fleet")
    endpoint_url: str | None = Field(default=None, description="greengrassv2 endpoint override")


class Workload(BaseModel):
    """A workload whose replicas fleetwatch may suggest scaling, with its load per replica."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}

    name: str = Field(..., min_length=1, max_length=200)
    site: str | None = Field(default=None, description="site it runs at; none = every site")
    replicas: int = Field(..., ge=0, le=1_000_000, description="replicas running now")
    per_replica_load: float = Field(
        ...,
        ge=0.001,
        le=1000,
        description="share of one healthy node one replica uses (0.25 = a quarter)",
    )


class ActionsSettings(BaseModel):
    """Policies, the safety gate and the actuators."""

    model_config = {"extra": "forbid"}

    mode: Literal["dry-run", "act"] = Field(
        default="dry-run", description="dry-run plans and audits without writing; act applies"
    )
    policies: list[Policy] = Field(
        default_factory=list, description="inline policies; with none and no file, the built-ins"
    )
    policies_file: Path | None = Field(
        default=None, description="TOML file with [[policies]] tables"
    )
    budget: Budget = Budget()
    site_budgets: dict[str, Budget] = Field(
        default_factory=dict, description="per-site (or per-cluster name) budget overrides"
    )
    drain_buffer_s: float = Field(
        default=600.0, ge=0, description="wait between two drains at a site"
    )
    drain_timeout_s: float = Field(
        default=1800.0,
        gt=0,
        description="a drain blocked this long is escalated to a person (not forced)",
    )
    storm_ratio: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="more than this share of a site flagged at once = a storm",
    )
    storm_min_devices: int = Field(
        default=3, ge=1, description="a storm needs at least this many flagged"
    )
    storm_cooldown_s: float = Field(
        default=1800.0, ge=0, description="quiet time after a storm ends"
    )
    max_hold_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="an upgrade hold is released automatically after this",
    )
    healthy_delay_s: float = Field(
        default=900.0, ge=0, description="a device stays healthy this long before uncordon/release"
    )
    require_approval: list[ActionKind] = Field(
        default_factory=list,
        description="action kinds that wait for a person's approval (cancel_rollout always does)",
    )
    decision_window_s: float = Field(
        default=3600.0,
        gt=0,
        description="one decision per policy+device+action per window (idempotency)",
    )
    actuators: list[str] = Field(
        default_factory=lambda: ["kubernetes", "greengrass"],
        description="actuator plugins to use (entry points in fleetwatch.actuators)",
    )
    kubernetes: KubernetesActuatorSettings = KubernetesActuatorSettings()
    greengrass: GreengrassActuatorSettings = GreengrassActuatorSettings()
    workloads: list[Workload] = Field(
        default_factory=list, description="workloads for scaling hints"
    )
    hint_horizon_s: float = Field(
        default=6 * 3600.0, gt=0, description="how far ahead placement and scaling hints look"
    )
    evaluate_interval_s: float = Field(
        default=60.0, gt=0, description="beat period of policy evaluation"
    )

    def budget_for(self, site_id: str, cluster: str | None = None) -> Budget:
        if site_id in self.site_budgets:
            return self.site_budgets[site_id]
        if cluster is not None and cluster in self.site_budgets:
            return self.site_budgets[cluster]
        return self.budget
