"""REST endpoints of orchestrator hints: placement per node, capacity and scaling per site, and
the same numbers as Prometheus metrics. Scope ``read``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict

from fastapi import APIRouter, Depends, Path, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.orm import Session

from fleetwatch.actions import hints
from fleetwatch.actions.config import Workload
from fleetwatch.actions.metrics import HintsCollector
from fleetwatch.actions.schemas import PlacementOut, ScalingIn, SiteCapacityOut, WorkloadHintOut
from fleetwatch.actions.views import device_views
from fleetwatch.api.deps import Principal, get_db, get_settings, require_scope
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.db import utcnow
from fleetwatch.settings import Settings

router = APIRouter(tags=["hints"])
_ID = r"^[^\n\r\x00/]{1,253}$"


def placement_hints(
    db: Session, settings: Settings, site: str | None = None
) -> list[hints.PlacementHint]:
    views = device_views(db=db, now=utcnow(), site=site)
    return hints.placements(views, horizon_s=settings.actions.hint_horizon_s)


def capacities(
    db: Session, settings: Settings, workloads: Sequence[Workload], site: str | None = None
) -> list[hints.SiteCapacity]:
    by_site = defaultdict(list)
    for view in device_views(db=db, now=utcnow(), site=site):
        by_site[view.site_id].append(view)
    horizon = settings.actions.hint_horizon_s
    return [
        hints.site_capacity(s, views, workloads, horizon_s=horizon)
        for s, views in sorted(by_site.items())
    ]


def _out(c: hints.SiteCapacity, horizon_s: float) -> SiteCapacityOut:
    return SiteCapacityOut(
        site_id=c.site_id,
        nodes=c.nodes,
        capacity_now=c.capacity_now,
        capacity_forecast=c.capacity_forecast,
        demand=c.demand,
        headroom_now_ratio=c.headroom_now_ratio,
        headroom_forecast_ratio=c.headroom_forecast_ratio,
        horizon_s=horizon_s,
        workloads=[WorkloadHintOut(**asdict(w)) for w in c.workloads],
    )


def _scoped(principal: Principal, site: str | None) -> str | None:
    if principal.site is not None and site not in (None, principal.site):
        raise ApiError(403, f"token is bound to site {principal.site!r}", code="forbidden")
    return principal.site or site


@router.get("/hints/placement", response_model=list[PlacementOut])
def placement(
    site: str | None = Query(None, pattern=_ID),
    advice: str | None = Query(None, pattern="^(avoid|neutral|prefer)$"),
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> list[PlacementOut]:
    """Per node: a placement score 0–100, avoid/neutral/prefer, and the reasons."""
    found = placement_hints(db, settings, _scoped(principal, site))
    return [PlacementOut(**asdict(h)) for h in found if advice is None or h.advice == advice]


@router.get("/hints/placement/{node}", response_model=PlacementOut, responses=error_responses(404))
def placement_of(
    node: str = Path(..., pattern=_ID),
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> PlacementOut:
    for h in placement_hints(db, settings, principal.site):
        if h.node == node:
            return PlacementOut(**asdict(h))
    raise ApiError(404, f"no device with node {node!r}")


@router.get("/hints/capacity", response_model=list[SiteCapacityOut])
def capacity(
    site: str | None = Query(None, pattern=_ID),
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> list[SiteCapacityOut]:
    """Per site: capacity headroom now and at the horizon, for the configured workloads."""
    found = capacities(db, settings, settings.actions.workloads, _scoped(principal, site))
    return [_out(c, settings.actions.hint_horizon_s) for c in found]


@router.post("/hints/scaling", response_model=list[SiteCapacityOut])
def scaling(
    body: ScalingIn,
    site: str | None = Query(None, pattern=_ID),
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> list[SiteCapacityOut]:
    """Suggested replica changes for workloads that declare their load per replica."""
    workloads = body.workloads or settings.actions.workloads
    found = capacities(db, settings, workloads, _scoped(principal, site))
    return [_out(c, settings.actions.hint_horizon_s) for c in found]


@router.get("/hints/metrics", response_class=Response)
def hint_metrics(
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> Response:
    """Prometheus exposition of the placement scores and site headroom (for KEDA/HPA)."""
    site = principal.site
    registry = CollectorRegistry()
    registry.register(
        HintsCollector(
            lambda: (
                placement_hints(db, settings, site),
                capacities(db, settings, settings.actions.workloads, site),
            )
        )
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
