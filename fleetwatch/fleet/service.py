"""Fleet inventory logic: register, update, look up and list sites and devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetwatch.fleet.models import Device, Site
from fleetwatch.fleet.schemas import DeviceIn, SiteIn


def upsert_site(*, db: Session, site: SiteIn) -> Site:
    row = db.get(Site, site.id)
    if row is None:
        row = Site(id=site.id)
        db.add(row)
    for key, value in site.model_dump(exclude={"id"}).items():
        setattr(row, key, value)
    db.flush()
    return row


def ensure_site(*, db: Session, site_id: str) -> Site:
    row = db.get(Site, site_id)
    if row is None:
        row = Site(id=site_id, name=site_id)
        db.add(row)
        db.flush()
    return row


def upsert_device(*, db: Session, device: DeviceIn) -> Device:
    """Register a device or update its attributes; its site is created if unknown."""
    ensure_site(db=db, site_id=device.site_id)
    row = db.get(Device, device.id)
    if row is None:
        row = Device(id=device.id)
        db.add(row)
    for key, value in device.model_dump(exclude={"id"}).items():
        setattr(row, key, value)
    db.flush()
    return row


def upsert_devices(*, db: Session, devices: Iterable[DeviceIn]) -> int:
    count = 0
    for device in devices:
        upsert_device(db=db, device=device)
        count += 1
    return count


def get(*, db: Session, device_id: str) -> Device | None:
    return db.get(Device, device_id)


def get_site(*, db: Session, site_id: str) -> Site | None:
    return db.get(Site, site_id)


def list_devices(
    *,
    db: Session,
    site: str | None = None,
    hardware_model: str | None = None,
    firmware: str | None = None,
    ids: Sequence[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Device], int]:
    """A page of devices matching the filters, and the total that match."""
    query = select(Device)
    if site is not None:
        query = query.where(Device.site_id == site)
    if hardware_model is not None:
        query = query.where(Device.hardware_model == hardware_model)
    if firmware is not None:
        query = query.where(Device.firmware == firmware)
    if ids is not None:
        query = query.where(Device.id.in_(list(ids)))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(Device.id).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def list_sites(*, db: Session) -> list[Site]:
    return list(db.scalars(select(Site).order_by(Site.id)).all())


def mark_seen(*, db: Session, seen: dict[str, datetime]) -> int:
    """Record when each device last sent data; unknown devices are ignored."""
    updated = 0
    for device_id, at in seen.items():
        row = db.get(Device, device_id)
        if row is not None and (row.last_seen_at is None or row.last_seen_at < at):
            row.last_seen_at = at
            updated += 1
    db.flush()
    return updated
