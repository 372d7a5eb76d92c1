"""Configuration of the Jetson collectors (sysfs and tegrastats)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from collectors._common import DeviceField, SiteField


class JetsonConfig(BaseModel):
    """Read thermal zones, fan and INA3221 power rails from sysfs."""

    model_config = {"extra": "forbid"}

    sysfs_root: Path = Field(Path("/sys"), description="the sysfs mount (tests use a copy)")
    device: str | None = DeviceField
    site: str = SiteField


class TegrastatsConfig(BaseModel):
    """Run ``tegrastats --interval`` and parse its lines, or tail its log file."""

    model_config = {"extra": "forbid"}

    command: list[str] = Field(
        default_factory=lambda: ["tegrastats"],
        description="the tegrastats command (``--interval`` is appended); run as root for "
        "EMC and GPU frequencies on JetPack 4",
    )
    interval_ms: int = Field(1000, ge=100, description="tegrastats --interval, in ms")
    logfile: Path | None = Field(
        None,
        description="tail this file (written by tegrastats --logfile) instead of running "
        "tegrastats; the first collection takes only its last line",
    )
    file: Path | None = Field(None, description="parse every line of this file at each collection")
    timezone: str = Field(
        "UTC", description="IANA zone of the device clock: JetPack 5+ lines carry local time"
    )
    max_lines: int = Field(10_000, ge=1, description="lines kept between collections")
    device: str | None = DeviceField
    site: str = SiteField

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
