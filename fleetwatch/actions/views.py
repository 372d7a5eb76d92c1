"""Read the fleet into the plain views policies, gate and hints work on (one query per table)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.actions import alerting_adapter
from fleetwatch.actions.models import DeviceActionState
from fleetwatch.actions.policy import DeviceView, ForecastView
from fleetwatch.analysis.models import DeviceHealth, Forecast
from fleetwatch.fleet.models import Device, Site


def device_views(
    *, db: Session, now: datetime, site: str | None = None, ids: Sequence[str] | None = None
) -> list[DeviceView]:
    """Every device (of a site, or with the given ids) with its health, forecasts crossing a
    limit, firing alerts and what fleetwatch holds on it."""
    query = select(Device, Site.cluster).join(Site, Site.id == Device.site_id)
    if site is not None:
        query = query.where(Device.site_id == site)
    if ids is not None:
        query = query.where(Device.id.in_(list(ids)))
    rows = db.execute(query.order_by(Device.id)).all()
    wanted = [d.id for d, _ in rows]
    health = {
        h.device_id: h
        for h in db.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(wanted)))
    }
    forecasts = _crossing_forecasts(db, wanted, now)
    state = {
        s.device_id: s
        for s in db.scalars(
            select(DeviceActionState).where(DeviceActionState.device_id.in_(wanted))
        )
    }
    alerts = alerting_adapter.firing_alerts(db=db)
    out = []
    for device, cluster in rows:
        h, st = health.get(device.id), state.get(device.id)
        out.append(
            DeviceView(
                device_id=device.id,
                site_id=device.site_id,
                node_name=device.node_name,
                runtime=device.runtime,
                cluster=cluster,
                status=h.status if h else "ok",
                risk_1h=h.risk_1h if h else 0.0,
                risk_24h=h.risk_24h if h else 0.0,
                top_signals=tuple(h.top_signals or ()) if h else (),
                forecasts=tuple(forecasts.get(device.id, ())),
                alerts=tuple(alerts.get(device.id, ())),
                cordoned=bool(st and st.cordoned),
                draining=bool(st and st.draining),
                held=bool(st and st.held),
                hold_expired=bool(st and not st.held and st.hold_expires_at is not None),
            )
        )
    return out


def _crossing_forecasts(
    db: Session, device_ids: list[str], now: datetime
) -> dict[str, list[ForecastView]]:
    out: dict[str, list[ForecastView]] = {}
    query = select(Forecast).where(
        Forecast.device_id.in_(device_ids), Forecast.will_cross.is_(True)
    )
    for fc in db.scalars(query):
        out.setdefault(fc.device_id, []).append(_forecast_view(fc, now))
    return out


def _forecast_view(fc: Forecast, now: datetime) -> ForecastView:
    # A forecast computed a while ago has less time left: count from now, not from computed_at.
    age = max(0.0, (now - fc.computed_at).total_seconds())

    def left(value: float | None) -> float | None:
        return None if value is None else max(0.0, value - age)

    return ForecastView(
        metric=fc.metric,
        limit_name=fc.limit_name,
        will_cross=fc.will_cross,
        time_to_threshold_s=left(fc.time_to_threshold_s),
        lower_s=left(fc.lower_s),
        upper_s=left(fc.upper_s),
        labels=dict(fc.labels or {}),
        current_value=fc.current_value,
        limit_value=fc.limit_value,
    )
