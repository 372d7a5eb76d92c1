"""Settings section `[actions]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel


class ActionsSettings(BaseModel):
    model_config = {"extra": "forbid"}
