"""ORM models of the fleet inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fleetwatch.db import Base, UTCDateTime, utcnow


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    cluster: Mapped[str | None] = mapped_column(String(200))  # orchestrator cluster name
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    devices: Mapped[list[Device]] = relationship(back_populates="site")


class Device(Base):
    """A device and its cohort: (hardware_model, firmware, site) groups its peers."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    hardware_model: Mapped[str] = mapped_column(String(100), default="unknown")
    accelerator: Mapped[str | None] = mapped_column(String(100))  # e.g. coral-pcie, orin-gpu
    firmware: Mapped[str | None] = mapped_column(String(100))  # JetPack/L4T or firmware version
    runtime: Mapped[str | None] = mapped_column(String(100))  # greengrass-2.x, iotedge-1.5
    node_name: Mapped[str | None] = mapped_column(String(253))  # Kubernetes/KubeEdge node
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    site: Mapped[Site] = relationship(back_populates="devices")

    __table_args__ = (
        Index("ix_devices_site_id", "site_id"),
        Index("ix_devices_cohort", "hardware_model", "firmware", "site_id"),
        Index("ix_devices_node_name", "node_name"),
    )

    @property
    def cohort(self) -> str:
        return f"{self.hardware_model}/{self.firmware or '-'}/{self.site_id}"
