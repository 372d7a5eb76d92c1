"""Settings section `[analysis]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel


class AnalysisSettings(BaseModel):
    model_config = {"extra": "forbid"}
