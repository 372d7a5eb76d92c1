"""Pure figure and wording builders, on payloads shaped like the API's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards import figures, ui, words
from dashboards.pages import alerts, device

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def health_row(i: int, site: str, risk: float, status: str = "ok") -> dict:
    return {
        "device_id": f"dev-{i:05d}",
        "site_id": site,
        "cohort": f"jetson-agx-orin/jetpack-6.1/{site}",
        "risk_1h": risk / 2,
        "risk_24h": risk,
        "status": status,
        "top_signals": [{"signal": "forecast", "detail": f"reason {i}"}],
    }


def test_fleet_grid_is_one_heatmap_with_a_cell_per_device_riskiest_first() -> None:
    rows = [health_row(i, "plant-a" if i % 2 else "plant-b", risk=i / 100) for i in range(60)]
    fig = figures.fleet_grid(rows, "light", revision="r1")
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    cells = [d for row in fig.data[0].customdata for d in row if d]
    assert sorted(cells) == sorted(r["device_id"] for r in rows)
    first_row = fig.data[0].z[0]
    risks = [z for z in first_row if z == z]  # NaN marks an empty cell
    assert risks == sorted(risks, reverse=True)
    assert fig.layout.uirevision == "r1"
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1


def test_fleet_grid_of_ten_thousand_devices_is_still_one_trace() -> None:
    rows = [health_row(i, f"site-{i % 20}", risk=(i % 97) / 97) for i in range(10_000)]
    fig = figures.fleet_grid(rows)
    assert len(fig.data) == 1
    assert sum(1 for row in fig.data[0].customdata for d in row if d) == 10_000


def test_empty_grid_says_so() -> None:
    fig = figures.fleet_grid([], "dark")
    assert "no devices" in fig.layout.annotations[0].text


def test_state_counts_count_unscored_devices_as_unknown() -> None:
    rows = [health_row(0, "a", 0.9, "critical"), health_row(1, "a", 0.1, "ok")]
    assert figures.state_counts(rows, devices_total=5) == {
        "critical": 1,
        "warning": 0,
        "ok": 1,
        "unknown": 3,
    }


def test_most_at_risk_is_sorted_and_says_why() -> None:
    rows = [health_row(i, "a", risk=r) for i, r in enumerate([0.1, 0.9, 0.5])]
    top = figures.most_at_risk(rows, limit=2)
    assert [r["device_id"] for r in top] == ["dev-00001", "dev-00002"]
    assert top[0]["reason"] == "reason 1"


def test_filters_keep_cohorts_and_states() -> None:
    rows = [health_row(0, "a", 0.9, "critical"), health_row(1, "b", 0.1, "ok")]
    kept = figures.filter_health(rows, cohorts=["jetson-agx-orin/jetpack-6.1/b"], states=[])
    assert [r["device_id"] for r in kept] == ["dev-00001"]
    assert figures.filter_health(rows, states=["critical"])[0]["device_id"] == "dev-00000"


FORECAST = {
    "metric": "temperature_celsius",
    "labels": {"sensor": "tj"},
    "limit_name": "trip_point_0",
    "limit_value": 94.8,
    "will_cross": True,
    "time_to_threshold_s": 2400.0,
    "lower_s": 1800.0,
    "upper_s": 3300.0,
    "current_value": 80.0,
    "computed_at": NOW.isoformat(),
}


def test_forecast_in_words() -> None:
    assert words.forecast_sentence(FORECAST) == (
        "tj reaches its 94.8 °C trip point in about 40 minutes (30–55)"
    )
    calm = {**FORECAST, "will_cross": False, "time_to_threshold_s": None}
    assert words.forecast_sentence(calm) == (
        "tj is not expected to reach its 94.8 °C trip point (now 80.0 °C)"
    )
    wide = {**FORECAST, "time_to_threshold_s": 5 * 3600, "lower_s": 1200, "upper_s": 30 * 3600}
    assert words.forecast_sentence(wide).endswith("in about 5 hours (20 minutes – 30 hours)")


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(30, "30 seconds"), (60, "1 minute"), (2412, "40 minutes"), (7200, "2 hours"),
     (3 * 86400, "3 days")],
)  # fmt: skip
def test_durations_are_said_as_a_person_would(seconds: float, said: str) -> None:
    assert words.duration(seconds) == said


def series(metric_labels: dict, start: datetime, n: int, value: float) -> dict:
    stamps = [int((start + timedelta(minutes=i)).timestamp() * 1000) for i in range(n)]
    return {"labels": metric_labels, "timestamps": stamps, "values": [value + i for i in range(n)]}


def test_device_series_draws_limit_band_and_anomalies() -> None:
    panel = {
        "metric": "temperature_celsius",
        "series": [series({"sensor": "tj"}, NOW - timedelta(hours=1), 60, 70.0)],
    }
    anomaly = {
        "metric": "temperature_celsius",
        "started_at": (NOW - timedelta(minutes=30)).isoformat(),
        "ended_at": (NOW - timedelta(minutes=20)).isoformat(),
    }
    fig = figures.device_series([panel], anomalies=[anomaly], forecasts=[FORECAST])
    names = [t.name for t in fig.data]
    assert "tj" in names and "forecast interval" in names and "anomaly" in names
    band = next(t for t in fig.data if t.name == "forecast interval")
    assert band.fill == "toself" and 94.8 in band.y
    shapes = fig.layout.shapes
    assert any(s.type == "line" and s.y0 == 94.8 for s in shapes), "the trip point is drawn"
    assert any(s.type == "rect" for s in shapes), "the anomaly episode is shaded"
    assert fig.layout.xaxis.type == "date"


def test_forecast_path_gives_a_filled_band_in_display_units() -> None:
    path = {"times": [1, 2], "mean": [2**30, 2 * 2**30], "lower": [0, 2**30], "upper": [2**31] * 2}
    traces = figures.forecast_path_traces(path, "light", scale=1 / 2**30)
    upper = next(t for t in traces if t.name == "forecast interval")
    assert upper.fill == "tonexty" and list(upper.y) == [2.0, 2.0]


def test_bytes_are_drawn_in_gib() -> None:
    panel = {"metric": "memory_used_bytes", "series": [series({}, NOW, 3, 2**30)]}
    fig = figures.device_series([panel])
    assert fig.data[0].y[0] == pytest.approx(1.0)
    assert "GiB" in fig.layout.annotations[0].text


def test_state_timeline_runs() -> None:
    start = NOW - timedelta(minutes=10)
    running = series({"component": "detector", "state": "RUNNING"}, start, 10, 0)
    running["values"] = [1] * 5 + [0] * 5
    broken = series({"component": "detector", "state": "BROKEN"}, start, 10, 0)
    broken["values"] = [0] * 5 + [1] * 5
    runs = figures.state_runs([running, broken], key_label="component", state_label="state")
    assert [(r["state"], r["end"] - r["start"]) for r in runs] == [
        ("RUNNING", timedelta(minutes=5)),
        ("BROKEN", timedelta(minutes=5)),
    ]
    fig = figures.state_timeline([running, broken])
    assert {t.name for t in fig.data} == {"RUNNING", "BROKEN"}


def test_peer_comparison_marks_the_device() -> None:
    peers = [{"device_id": f"d{i}", "value": 50.0 + i} for i in range(5)]
    fig = figures.peer_comparison(peers, "d4", "temperature_celsius")
    assert fig.data[1].name == "d4" and list(fig.data[1].x) == [54.0]


def test_step_keeps_a_week_between_one_and_two_thousand_points() -> None:
    step = device.step_for(timedelta(days=7))
    assert 1000 <= 7 * 86400 / step <= 2000


def test_silence_matchers_round_trip() -> None:
    alert = {"rule": "ThermalTripSoon", "labels": {"device": "jetson-1", "site": "ber"}}
    text = alerts.matchers_for(alert)
    assert alerts.parse_matchers(text) == [
        {"name": "alertname", "op": "=", "value": "ThermalTripSoon"},
        {"name": "device", "op": "=", "value": "jetson-1"},
        {"name": "site", "op": "=", "value": "ber"},
    ]
    assert alerts.parse_matchers('site=~"ber-.*"')[0]["op"] == "=~"
    with pytest.raises(ValueError, match="cannot read"):
        alerts.parse_matchers("no operator here")


def test_query_state_round_trips() -> None:
    search = ui.to_search({"site": "plant a", "state": ["critical", "warning"], "cohort": []})
    assert ui.parse_query(search) == {"site": ["plant a"], "state": ["critical", "warning"]}
    assert ui.to_search({"site": None}) == ""
