"""Every HTTP call the dashboard makes to the fleetwatch REST API, in one place.

When a route moves, this module is the one edit. Errors never escape as tracebacks: a call
raises :class:`ApiError` with a sentence fit for the page banner, or :class:`NotAvailable` when
the API does not serve the route at all (an older or partial deployment), so a page can say
"not available" and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

API = "/api/v1"

# Route table: one name per call, so adapting to route changes is an edit here.
ROUTES: dict[str, str] = {
    "devices": f"{API}/devices",
    "device": f"{API}/devices/{{device_id}}",
    "sites": f"{API}/sites",
    "metrics_range": f"{API}/metrics/range",
    "metrics_latest": f"{API}/metrics/latest",
    "metrics_series": f"{API}/metrics/series",
    "health": f"{API}/health",
    "forecasts": f"{API}/devices/{{device_id}}/forecasts",
    "anomalies": f"{API}/devices/{{device_id}}/anomalies",
    "forecast_path": f"{API}/devices/{{device_id}}/forecast-path",
    "peers": f"{API}/devices/{{device_id}}/peers",
    "alerts": f"{API}/alerts",
    "alert_ack": f"{API}/alerts/{{fingerprint}}/ack",
    "alert_matchers": f"{API}/alerts/{{fingerprint}}/silence-matchers",
    "silences": f"{API}/silences",
    "deliveries": f"{API}/notifications",
    "actions": f"{API}/actions",
    "action_approve": f"{API}/actions/{{action_id}}/approve",
    "action_reject": f"{API}/actions/{{action_id}}/reject",
    "audit": f"{API}/actions/audit",
    "holds": f"{API}/actions/holds",
    "drains": f"{API}/actions/drains",
    "pauses": f"{API}/actions/pauses",
}

Params = Mapping[str, Any]


class ApiError(Exception):
    """A call failed; ``str(error)`` is a sentence for the user, ``status`` the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotAvailable(ApiError):
    """The API does not serve this route (404 on the route itself, or 405)."""


def _clean(params: Params | None) -> dict[str, Any]:
    """Drop empty filters; datetimes go as ISO 8601."""
    out: dict[str, Any] = {}
    for key, val in (params or {}).items():
        if val is None or val == "" or val == []:
            continue
        out[key] = val.isoformat() if isinstance(val, datetime) else val
    return out


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("detail"):
            return str(body["detail"])
    return response.reason_phrase


class FleetwatchClient:
    """A thin, thread-safe client of the REST API with a bearer token and timeouts."""

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "fleetwatch-dashboard"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # --- transport -------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        route: str,
        *,
        params: Params | None = None,
        json: Any = None,
        **path: str,
    ) -> Any:
        url = ROUTES[route].format(**{k: quote(str(v), safe="") for k, v in path.items()})
        try:
            response = self._http.request(method, url, params=_clean(params), json=json)
        except httpx.TimeoutException:
            raise ApiError(f"the API at {self.api_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the API at {self.api_url}: {exc}") from None
        except RuntimeError:  # httpx refuses to send once the client is closed
            raise ApiError("the dashboard is shutting down") from None
        if response.status_code >= 400:
            message = _message(response)
            # A missing route answers Starlette's bare "Not Found"; a missing thing names itself.
            if response.status_code == 405 or (
                response.status_code == 404 and message.lower() == "not found"
            ):
                raise NotAvailable(f"{route.replace('_', ' ')} is not available from this API", 404)
            raise ApiError(f"{message} ({response.status_code})", response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the API answered {url} with something that is not JSON") from None

    def _get(self, route: str, params: Params | None = None, **path: str) -> Any:
        return self._request("GET", route, params=params, **path)

    def _post(self, route: str, body: Any = None, **path: str) -> Any:
        return self._request("POST", route, json=body if body is not None else {}, **path)

    # --- fleet -----------------------------------------------------------------------------
    def devices(self, **filters: Any) -> dict[str, Any]:
        """A page of devices: ``{"items": [...], "total": n}``."""
        return _page(self._get("devices", filters))

    def device(self, device_id: str) -> dict[str, Any]:
        return dict(self._get("device", device_id=device_id))

    def sites(self) -> list[dict[str, Any]]:
        return _items(self._get("sites"))

    # --- metrics ---------------------------------------------------------------------------
    def series_range(
        self,
        *,
        device: str,
        metric: str,
        start: datetime,
        end: datetime,
        step_s: float | None = None,
        agg: str = "mean",
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Series of one metric of one device: ``[{labels, timestamps, values}]``, downsampled
        by the API to ``step_s`` (the dashboard asks for ~1,500 points per series)."""
        params: dict[str, Any] = {
            "device": device,
            "metric": metric,
            "start": start,
            "end": end,
            "step": step_s,
            "agg": agg,
        }
        if labels:
            params["label"] = [f"{k}={v}" for k, v in sorted(labels.items())]
        return _series(self._get("metrics_range", params))

    def list_series(self, *, device: str) -> list[dict[str, Any]]:
        """Series a device has: ``[{metric, labels}]``."""
        return _items(self._get("metrics_series", {"device": device, "limit": 10_000}))

    def latest(self, *, metric: str, labels: Mapping[str, str] | None = None) -> list[dict]:
        """The newest point of every matching series: ``[{labels, timestamp, value}]``."""
        params: dict[str, Any] = {"metric": metric}
        if labels:
            params["label"] = [f"{k}={v}" for k, v in sorted(labels.items())]
        return _series(self._get("metrics_latest", params))

    # --- analysis --------------------------------------------------------------------------
    def health(self, *, site: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return _items(self._get("health", {"site": site, "status": status}))

    def forecasts(self, device_id: str) -> list[dict[str, Any]]:
        return _items(self._get("forecasts", device_id=device_id))

    def anomalies(self, device_id: str, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Anomaly episodes still open or ended after ``since``."""
        return _items(self._get("anomalies", {"since": since}, device_id=device_id))

    def forecast_path(
        self,
        device_id: str,
        *,
        metric: str,
        labels: Mapping[str, str] | None = None,
        hours: float = 6.0,
    ) -> dict[str, Any]:
        """The forecast band of one series, fitted on ``hours`` of history:
        ``{times, mean, lower, upper, limit, ...}``. Labels other than device and site
        (sensor, disk, module) pick the series."""
        params: dict[str, Any] = {"metric": metric, "hours": hours}
        params.update({k: v for k, v in (labels or {}).items() if k not in ("device", "site")})
        return dict(self._get("forecast_path", params, device_id=device_id))

    def peers(self, device_id: str, *, metric: str) -> list[dict[str, Any]]:
        """Latest values of ``metric`` on every device of this device's cohort:
        ``[{device_id, value, time}]`` (one per series: several per device with sensors)."""
        body = self._get("peers", {"metric": metric}, device_id=device_id)
        if isinstance(body, dict) and isinstance(body.get("devices"), list):
            return list(body["devices"])
        return _items(body)

    # --- alerting --------------------------------------------------------------------------
    def alerts(self, **filters: Any) -> list[dict[str, Any]]:
        return _items(self._get("alerts", filters))

    def acknowledge(
        self, fingerprint: str, *, expires_at: datetime, comment: str = ""
    ) -> dict[str, Any]:
        """Acknowledge an alert (by its fingerprint) until ``expires_at``."""
        body = {"expires_at": expires_at.isoformat(), "comment": comment or None}
        return dict(self._post("alert_ack", body, fingerprint=fingerprint) or {})

    def silence_matchers(self, fingerprint: str) -> list[dict[str, Any]]:
        """The matchers the API suggests for silencing an alert: ``[{name, op, value}]``."""
        return _items(self._get("alert_matchers", fingerprint=fingerprint))

    def silences(self, **filters: Any) -> list[dict[str, Any]]:
        return _items(self._get("silences", filters))

    def create_silence(
        self,
        *,
        matchers: list[dict[str, Any]],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
    ) -> dict[str, Any]:
        """Silence alerts matching every matcher; the API records the token as its author."""
        body = {
            "matchers": matchers,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "comment": comment,
        }
        return dict(self._post("silences", body) or {})

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        """Notifications with their delivery attempts, newest first."""
        return _items(self._get("deliveries", filters))

    # --- actions ---------------------------------------------------------------------------
    def actions(self, **filters: Any) -> list[dict[str, Any]]:
        return _items(self._get("actions", filters))

    def decide(self, action_id: str | int, *, approve: bool, reason: str) -> dict[str, Any]:
        route = "action_approve" if approve else "action_reject"
        return dict(self._post(route, {"comment": reason}, action_id=str(action_id)) or {})

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return _items(self._get("audit", filters))

    def holds(self) -> list[dict[str, Any]]:
        """Devices whose upgrades are held, with when each hold expires."""
        return _items(self._get("holds"))

    def drains(self) -> list[dict[str, Any]]:
        """Devices cordoned or being drained."""
        return _items(self._get("drains"))

    def pauses(self) -> list[dict[str, Any]]:
        """Action pauses (a site or the whole fleet) people have put in place."""
        return _items(self._get("pauses"))


def _items(body: Any) -> list[dict[str, Any]]:
    """A list answer, whether bare or wrapped as ``{"items": [...]}``."""
    if isinstance(body, dict):
        for key in ("items", "data", "results"):
            if isinstance(body.get(key), list):
                return list(body[key])
        return []
    return list(body or [])


def _page(body: Any) -> dict[str, Any]:
    if isinstance(body, list):
        return {"items": body, "total": len(body)}
    items = _items(body)
    return {"items": items, "total": int(body.get("total", len(items)))}


def _series(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("series"), list):
        return list(body["series"])
    return _items(body)
