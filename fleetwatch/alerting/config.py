"""Settings section `[alerting]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel


class AlertingSettings(BaseModel):
    model_config = {"extra": "forbid"}
