"""Configuration of the Coral Edge TPU collector."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from collectors._common import DeviceField, SiteField


class CoralConfig(BaseModel):
    """Read the apex driver's sysfs attributes (PCIe, M.2 and Mini-PCIe Edge TPUs)."""

    model_config = {"extra": "forbid"}

    sysfs_root: Path = Field(Path("/sys"), description="the sysfs mount (tests use a copy)")
    device: str | None = DeviceField
    site: str = SiteField
