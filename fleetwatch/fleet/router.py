"""REST endpoints of the fleet inventory: devices (with their latest health) and sites.

Reading needs scope ``read``; registering or updating a device or site needs ``admin``
(inventory changes are operator actions; gateway agents only need ``ingest``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.analysis.models import DeviceHealth
from fleetwatch.api.deps import (
    Principal,
    get_db,
    reject_unknown_query_params,
    require_scope,
)
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.fleet import service
from fleetwatch.fleet.models import Device
from fleetwatch.fleet.schemas import DeviceIn, DeviceOut, SiteIn, SiteOut

router = APIRouter(tags=["fleet"], dependencies=[Depends(reject_unknown_query_params)])

HealthStatus = Literal["ok", "warning", "critical"]
_ID_PATTERN = r"^[^\n\r\x00/]{1,200}$"
_DEVICE_ID = Path(..., pattern=_ID_PATTERN, description="device id", examples=["jetson-0001"])
_SITE_ID = Path(..., pattern=_ID_PATTERN, description="site id", examples=["plant-a"])


class HealthSummary(BaseModel):
    """The latest analysis verdict of a device (absent until analysis has run)."""

    model_config = ConfigDict(from_attributes=True)

    status: str = Field(..., examples=["warning"], description="ok | warning | critical")
    health: float = Field(..., examples=[0.82], description="1 - risk_24h")
    risk_1h: float = Field(..., examples=[0.03])
    risk_24h: float = Field(..., examples=[0.18])
    computed_at: datetime


class DeviceView(DeviceOut):
    health_summary: HealthSummary | None = Field(
        None, description="latest analysis result; null when the device has not been analysed"
    )


class DevicePage(BaseModel):
    items: list[DeviceView]
    total: int = Field(..., ge=0, description="devices matching the filters, over all pages")
    limit: int
    offset: int


class DeviceUpdate(BaseModel):
    """A device's attributes; its id is the path."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(..., pattern=_ID_PATTERN, examples=["plant-a"])
    hardware_model: str = Field("unknown", max_length=100, examples=["jetson-agx-orin"])
    accelerator: str | None = Field(None, max_length=100, examples=["orin-gpu"])
    firmware: str | None = Field(None, max_length=100, examples=["jetpack-6.1"])
    runtime: str | None = Field(None, max_length=100, examples=["greengrass-2.14"])
    node_name: str | None = Field(None, max_length=253, examples=["edge-node-17"])
    labels: dict[str, Any] = Field(default_factory=dict, examples=[{"line": "3"}])


class SiteUpdate(BaseModel):
    """A site's attributes; its id is the path."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, examples=["Plant A, Lyon"])
    region: str | None = Field(None, max_length=100, examples=["eu-west"])
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Paris"])
    cluster: str | None = Field(None, max_length=200, examples=["kubeedge-lyon"])


def _views(db: Session, devices: list[Device]) -> list[DeviceView]:
    ids = [d.id for d in devices]
    health = {}
    if ids:
        rows = db.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(ids)))
        health = {h.device_id: h for h in rows}
    out = []
    for device in devices:
        view = DeviceView.model_validate(device, from_attributes=True)
        row = health.get(device.id)
        if row is not None:
            view.health_summary = HealthSummary.model_validate(row)
        out.append(view)
    return out


def _parse_cohort(cohort: str) -> tuple[str, str | None, str]:
    parts = cohort.split("/")
    if len(parts) != 3 or not all(parts):
        raise ApiError(
            422,
            "cohort must read hardware_model/firmware/site (firmware '-' when unknown)",
            details=[{"loc": ["query", "cohort"], "msg": f"got {cohort!r}"}],
        )
    hardware_model, firmware, site = parts
    return hardware_model, (None if firmware == "-" else firmware), site


@router.get(
    "/devices",
    response_model=DevicePage,
    summary="List devices, filtered and paginated",
    responses=error_responses(),
)
def list_devices(
    site: str | None = Query(None, description="only devices of this site"),
    hardware_model: str | None = Query(None, examples=["jetson-agx-orin"]),
    firmware: str | None = Query(None, examples=["jetpack-6.1"]),
    cohort: str | None = Query(
        None,
        pattern=r"^[^/]+/[^/]+/[^/]+$",
        description="hardware_model/firmware/site, as in a device's `cohort` (firmware '-' when "
        "unknown)",
        examples=["jetson-agx-orin/jetpack-6.1/plant-a"],
    ),
    status: HealthStatus | None = Query(
        None, description="only devices whose latest health has this status"
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> DevicePage:
    if cohort is not None:
        cohort_model, cohort_firmware, cohort_site = _parse_cohort(cohort)
        if _conflicts(hardware_model, cohort_model) or _conflicts(site, cohort_site):
            return DevicePage(items=[], total=0, limit=limit, offset=offset)
        if cohort_firmware is not None and _conflicts(firmware, cohort_firmware):
            return DevicePage(items=[], total=0, limit=limit, offset=offset)
        hardware_model, site = cohort_model, cohort_site
        firmware = cohort_firmware if cohort_firmware is not None else firmware
    ids = None
    if status is not None:
        ids = list(db.scalars(select(DeviceHealth.device_id).where(DeviceHealth.status == status)))
    devices, total = service.list_devices(
        db=db,
        site=site,
        hardware_model=hardware_model,
        firmware=firmware,
        ids=ids,
        limit=limit,
        offset=offset,
    )
    return DevicePage(items=_views(db, devices), total=total, limit=limit, offset=offset)


def _conflicts(given: str | None, implied: str) -> bool:
    return given is not None and given != implied


def _link(operation_id: str, parameter: str, description: str) -> dict[str, Any]:
    """An OpenAPI link: the resource just written can be read back at the same id."""
    return {
        "responses": {
            "200": {
                "links": {
                    operation_id: {
                        "operationId": operation_id,
                        "parameters": {parameter: f"$request.path.{parameter}"},
                        "description": description,
                    }
                }
            }
        }
    }


@router.get(
    "/devices/{device_id}",
    operation_id="get_device",
    response_model=DeviceView,
    summary="One device with its latest health",
    responses=error_responses(404),
)
def get_device(
    device_id: str = _DEVICE_ID,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> DeviceView:
    device = service.get(db=db, device_id=device_id)
    if device is None:
        raise ApiError(404, f"device {device_id!r} not found")
    return _views(db, [device])[0]


@router.put(
    "/devices/{device_id}",
    response_model=DeviceView,
    summary="Register or update a device (its site is created if unknown)",
    openapi_extra=_link("get_device", "device_id", "the device as now registered"),
    responses=error_responses(),
)
def put_device(
    body: DeviceUpdate,
    device_id: str = _DEVICE_ID,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("admin")),
) -> DeviceView:
    device = service.upsert_device(db=db, device=DeviceIn(id=device_id, **body.model_dump()))
    db.commit()
    return _views(db, [device])[0]


@router.get(
    "/sites", response_model=list[SiteOut], summary="List sites", responses=error_responses()
)
def list_sites(
    db: Session = Depends(get_db, scope="function"), _: Principal = Depends(require_scope("read"))
) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in service.list_sites(db=db)]


@router.get(
    "/sites/{site_id}",
    operation_id="get_site",
    response_model=SiteOut,
    summary="One site",
    responses=error_responses(404),
)
def get_site(
    site_id: str = _SITE_ID,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> SiteOut:
    site = service.get_site(db=db, site_id=site_id)
    if site is None:
        raise ApiError(404, f"site {site_id!r} not found")
    return SiteOut.model_validate(site)


@router.put(
    "/sites/{site_id}",
    response_model=SiteOut,
    summary="Create or update a site",
    openapi_extra=_link("get_site", "site_id", "the site as now stored"),
)
def put_site(
    body: SiteUpdate,
    site_id: str = _SITE_ID,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("admin")),
) -> SiteOut:
    site = service.upsert_site(db=db, site=SiteIn(id=site_id, **body.model_dump()))
    db.commit()
    return SiteOut.model_validate(site)
