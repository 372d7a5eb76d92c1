"""Settings section `[alerting]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class AlertingSettings(BaseModel):
    """Where the rules live and the knobs of the alert lifecycle and delivery."""

    model_config = {"extra": "forbid"}

    rules_file: Path | None = Field(
        None,
        description="YAML or TOML file with rules, route, receivers, inhibit_rules and "
        "maintenance_windows; none = the built-in default rule set (no receivers)",
    )
    external_url: str = Field(
        "http://127.0.0.1:8050", description="base URL of the dashboard, used in alert links"
    )
    allowed_http_hosts: list[str] = Field(
        default_factory=list,
        description="hosts a webhook may reach over plain http (e.g. 127.0.0.1); "
        "every other destination must be https",
    )
    evaluation_interval_s: float = Field(30.0, gt=0, description="beat period of rule evaluation")
    dispatch_interval_s: float = Field(5.0, gt=0, description="beat period of dispatch")
    flap_window_s: float = Field(
        1800.0, gt=0, description="window in which state changes are counted for flapping"
    )
    flap_threshold: int = Field(
        4, ge=2, description="state changes within the window that make an alert flapping"
    )
    default_ack_s: float = Field(
        4 * 3600.0, gt=0, description="acknowledgement lifetime when none is given"
    )
    resolved_retention_s: float = Field(
        7 * 86400.0, gt=0, description="how long a resolved alert is kept for a pending resolve"
    )
    silences_mute_resolved: bool = Field(
        False, description="when true, a silence also holds back resolve notifications"
    )
    max_attempts: int = Field(4, ge=1, le=10, description="delivery attempts per notification")
    retry_backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles per retry")
    retry_max_s: float = Field(30.0, ge=0, description="longest wait between two attempts")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per delivery attempt")
