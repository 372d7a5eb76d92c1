"""Pydantic schemas of sites and devices (API bodies and service inputs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[^\n\r\x00]{1,200}$"


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=_ID, description="site id, as stamped in the `site` label")
    name: str = Field("", max_length=200)
    region: str | None = Field(None, max_length=100)
    timezone: str = Field("UTC", max_length=64)
    cluster: str | None = Field(None, max_length=200, description="orchestrator cluster")


class SiteOut(SiteIn):
    model_config = ConfigDict(from_attributes=True)

    created_at: datetime


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=_ID, description="device id, as stamped in the `device` label")
    site_id: str = Field(..., pattern=_ID)
    hardware_model: str = Field("unknown", max_length=100, examples=["jetson-agx-orin"])
    accelerator: str | None = Field(None, max_length=100, examples=["coral-pcie"])
    firmware: str | None = Field(None, max_length=100, examples=["jetpack-6.1"])
    runtime: str | None = Field(None, max_length=100, examples=["greengrass-2.14"])
    node_name: str | None = Field(None, max_length=253, description="Kubernetes node name")
    labels: dict[str, Any] = Field(default_factory=dict)


class DeviceOut(DeviceIn):
    model_config = ConfigDict(from_attributes=True)

    cohort: str
    registered_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None = None
