"""Numbers said in words: durations, values with units, forecasts and risk reasons.

An operator should read "tj reaches its 94.8 °C trip point in about 40 minutes (30–55)", not
``time_to_threshold_s=2412.7``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_UNITS = (("second", 1.0), ("minute", 60.0), ("hour", 3600.0), ("day", 86400.0))


def _unit_for(seconds: float) -> tuple[str, float]:
    if seconds < 60:
        return _UNITS[0]
    if seconds < 90 * 60:
        return _UNITS[1]
    if seconds < 48 * 3600:
        return _UNITS[2]
    return _UNITS[3]


def _count(seconds: float, size: float) -> int:
    n = seconds / size
    # Minutes past ten are rounded to five: a forecast is not precise to the minute.
    if size == 60.0 and n > 10:
        return int(5 * round(n / 5))
    return max(1, round(n)) if seconds > 0 else 0


def duration(seconds: float) -> str:
    """'40 minutes', '3 hours', '2 days' — rounded as a person would say it."""
    seconds = max(0.0, float(seconds))
    name, size = _unit_for(seconds)
    n = _count(seconds, size)
    return f"{n} {name}{'' if n == 1 else 's'}"


def duration_range(seconds: float, lower: float | None, upper: float | None) -> str:
    """'about 40 minutes (30–55)', or with units on both ends when they differ."""
    text = f"about {duration(seconds)}"
    if lower is None or upper is None:
        return text
    name, size = _unit_for(seconds)
    if _unit_for(lower)[0] == name and _unit_for(upper)[0] == name:
        return f"{text} ({_count(lower, size)}–{_count(upper, size)})"
    return f"{text} ({duration(lower)} – {duration(upper)})"


def _unit_of(metric: str) -> str:
    for suffix, unit in (
        ("_celsius", " °C"),
        ("_watts", " W"),
        ("_seconds", " s"),
        ("_rpm", " rpm"),
        ("_hertz", " Hz"),
    ):
        if metric.endswith(suffix):
            return unit
    return ""


def value(metric: str, number: float | None) -> str:
    """A value in the metric's unit: '94.8 °C', '1.2 GiB', '87%'."""
    if number is None:
        return "–"
    if metric.endswith("_bytes"):
        return bytes_text(number)
    if metric.endswith("_ratio"):
        return f"{number * 100:.0f}%"
    return f"{number:.1f}{_unit_of(metric)}"


def bytes_text(number: float) -> str:
    size = float(number)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def series_name(metric: str, labels: Mapping[str, str] | None) -> str:
    """What a person calls a series: its distinguishing label values, else the metric."""
    extra = {k: v for k, v in (labels or {}).items() if k not in ("device", "site")}
    if extra:
        # A sensor is known by its name ("tj"); other labels read better with their key.
        return " ".join(v if k == "sensor" else f"{k} {v}" for k, v in sorted(extra.items()))
    return metric.removesuffix("_celsius").removesuffix("_bytes").replace("_", " ")


def limit_name(name: str) -> str:
    """'trip_point_0' -> 'trip point', 'disk_capacity' -> 'disk capacity'."""
    words = [w for w in name.split("_") if not w.isdigit()]
    return " ".join(words) or name


def forecast_sentence(forecast: Mapping[str, Any]) -> str:
    """One forecast in words, e.g. 'tj reaches its 94.8 °C trip point in about 40 minutes
    (30–55)'."""
    metric = str(forecast.get("metric", ""))
    subject = series_name(metric, forecast.get("labels"))
    name = limit_name(str(forecast.get("limit_name", "limit")))
    limit = f"{value(metric, forecast.get('limit_value'))} {name}"
    ttt = forecast.get("time_to_threshold_s")
    if not forecast.get("will_cross") or ttt is None:
        now = value(metric, forecast.get("current_value"))
        return f"{subject} is not expected to reach its {limit} (now {now})"
    if ttt <= 0:
        return f"{subject} is at its {limit}"
    span = duration_range(ttt, forecast.get("lower_s"), forecast.get("upper_s"))
    return f"{subject} reaches its {limit} in {span}"


def reason(top_signals: list[Mapping[str, Any]] | None) -> str:
    """Why a device is at risk, from its largest signal: its own words when it has them."""
    if top_signals is None:  # the API did not say
        return "–"
    if not top_signals:
        return "no signal"
    first = top_signals[0]
    detail = first.get("detail")
    if detail:
        return str(detail)
    metric = str(first.get("metric", ""))
    return f"{first.get('signal', 'signal')} on {series_name(metric, first.get('labels'))}"


def parse_time(text: str | None) -> datetime | None:
    """An ISO timestamp from the API as an aware UTC datetime; None stays None."""
    if not text:
        return None
    at = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def ago(text: str | None, now: datetime | None = None) -> str:
    """'5 minutes ago' from an ISO timestamp; '–' when there is none."""
    at = parse_time(text)
    if at is None:
        return "–"
    now = now or datetime.now(tz=UTC)
    seconds = (now - at).total_seconds()
    if seconds < 0:
        return f"in {duration(-seconds)}"
    return f"{duration(seconds)} ago"


def clock(text: str | None) -> str:
    """'2026-03-02 06:00 UTC' from an ISO timestamp."""
    at = parse_time(text)
    return "–" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
