"""Settings section `[agent]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel


class AgentSettings(BaseModel):
    model_config = {"extra": "forbid"}
