"""The only place actions touch alerting: read firing alerts, announce actions and pages.

Alerting may be absent (an older install, or a deployment without it): then there are no firing
alerts to read and announcements are reported as not delivered — the audit log still records
every decision, so nothing is lost but the notification.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fleetwatch.actions.policy import AlertView

log = logging.getLogger(__name__)
ALERTING_SERVICE = "fleetwatch.alerting.service"
SOURCE = "fleetwatch-actions"  # label on every announcement of ours


def _service() -> Any | None:
    try:
        return importlib.import_module(ALERTING_SERVICE)
    except ImportError:
        return None


def _rows(result: Any) -> Iterable[Any]:
    # list_alerts may return rows, or (rows, total) like other list services.
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        return result[0]  # type: ignore[no-any-return]
    return result  # type: ignore[no-any-return]


def _field(row: Any, name: str, default: Any = None) -> Any:
    if isinstance(row, dict):
        return row.get(name, default)
    return getattr(row, name, default)


def firing_alerts(*, db: Session) -> dict[str, list[AlertView]]:
    """Firing alerts by device id; empty when alerting is not installed."""
    service = _service()
    list_alerts = getattr(service, "list_alerts", None)
    if list_alerts is None:
        return {}
    try:
        result = list_alerts(db=db, state="firing", limit=100_000)
    except TypeError:
        log.warning("alerting.service.list_alerts has an unexpected signature; ignoring alerts")
        return {}
    out: dict[str, list[AlertView]] = {}
    for row in _rows(result):
        labels = dict(_field(row, "labels") or {})
        # Announcements (ours included) are events, not trouble on the device.
        if _field(row, "kind") == "event" or labels.get("source") == SOURCE:
            continue
        device = _field(row, "device") or labels.get("device")
        if not device:
            continue
        name = labels.get("alertname") or _field(row, "rule") or _field(row, "name") or "alert"
        out.setdefault(str(device), []).append(
            AlertView(
                name=str(name),
                severity=str(_field(row, "severity") or labels.get("severity") or "warning"),
                labels={str(k): str(v) for k, v in labels.items()},
                fingerprint=str(_field(row, "fingerprint") or ""),
            )
        )
    return out


def announce(
    *,
    db: Session,
    now: datetime,
    title: str,
    labels: dict[str, str],
    severity: str,
    description: str,
) -> bool:
    """Announce through alerting; False (and a log line) when alerting cannot take it."""
    service = _service()
    fn = getattr(service, "announce", None)
    labels = {**labels, "source": SOURCE}
    if fn is None:
        log.info("alerting not available; not announced: %s", title)
        return False
    try:
        # A savepoint: a failed announcement rolls back its own writes, not the caller's.
        with db.begin_nested():
            fn(
                db=db,
                now=now,
                title=title,
                labels=labels,
                severity=severity,
                description=description,
            )
    except Exception:  # an announcement failing must not undo the action it reports
        log.exception("announcing %r through alerting failed", title)
        return False
    return True
