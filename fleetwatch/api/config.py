"""Settings section `[api]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel


class ApiSettings(BaseModel):
    model_config = {"extra": "forbid"}
