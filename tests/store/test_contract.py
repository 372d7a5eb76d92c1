"""One contract, two backends: the embedded SQLite store and a real influxd must agree."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fleetwatch.store import MetricsStore, StoreError
from fleetwatch.telemetry import Sample, now_ms

T0 = (now_ms() // 3_600_000 - 24) * 3_600_000  # a whole hour, a day ago: inside retention


def temp(device: str, value: float, ts: int, sensor: str = "cpu", site: str = "s1") -> Sample:
    return Sample(
        "temperature_celsius", {"device": device, "site": site, "sensor": sensor}, value, ts
    )


def ramp(device: str, n: int, step_ms: int = 60_000, sensor: str = "cpu") -> list[Sample]:
    return [temp(device, float(i), T0 + i * step_ms, sensor) for i in range(n)]


def test_round_trip_raw_points(store: MetricsStore) -> None:
    result = store.write(ramp("d1", 10) + ramp("d2", 5))
    assert result.written == 15 and result.errors == []
    df = store.query_range(metric="temperature_celsius", device="d1", start=T0, end=T0 + 3_600_000)
    assert list(df["value"]) == [float(i) for i in range(10)]
    assert df["time"].iloc[3] == pd.Timestamp(T0 + 3 * 60_000, unit="ms", tz="UTC")
    assert set(df["device"]) == {"d1"} and set(df["sensor"]) == {"cpu"}
    assert store.count() == 15
    assert store.count("temperature_celsius") == 15
    assert store.count("no_such_metric") == 0


def test_rewriting_a_batch_does_not_duplicate(store: MetricsStore) -> None:
    batch = ramp("d1", 20)
    store.write(batch)
    store.write(batch)
    assert store.count() == 20
    store.write([temp("d1", 99.5, T0)])  # same series + timestamp: the value is replaced
    df = store.query_range(metric="temperature_celsius", device="d1", start=T0, end=T0 + 1)
    assert list(df["value"]) == [99.5]
    assert store.count() == 20


def test_one_bad_sample_is_reported_and_the_rest_stored(store: MetricsStore) -> None:
    good = ramp("d1", 3)
    bad_name = Sample("bad-name", {"device": "d1", "site": "s1"}, 1.0, T0)
    non_finite = temp("d1", math.nan, T0 + 10)
    no_device = Sample("temperature_celsius", {"site": "s1"}, 1.0, T0)
    result = store.write([good[0], bad_name, good[1], non_finite, no_device, good[2]])
    assert result.written == 3
    assert [e.index for e in result.errors] == [1, 3, 4]
    assert "bad-name" in result.errors[0].message and "metric name" in result.errors[0].message
    assert "not finite" in result.errors[1].message
    assert "missing required label 'device'" in result.errors[2].message
    assert store.count() == 3


@pytest.mark.parametrize(
    ("agg", "expected"),
    [("mean", [4.5, 14.5]), ("max", [9.0, 19.0]), ("min", [0.0, 10.0]), ("last", [9.0, 19.0])],
)
def test_downsampling_aligns_buckets_to_the_epoch(
    store: MetricsStore, agg: str, expected: list[float]
) -> None:
    store.write(ramp("d1", 20))  # one point per minute for 20 minutes from a whole hour
    df = store.query_range(
        metric="temperature_celsius",
        device="d1",
        start=T0,
        end=T0 + 20 * 60_000,
        step_s=600,
        agg=agg,  # type: ignore[arg-type]
    )
    assert list(df["value"]) == expected
    assert list(df["time"]) == [
        pd.Timestamp(T0, unit="ms", tz="UTC"),
        pd.Timestamp(T0 + 600_000, unit="ms", tz="UTC"),
    ]


def test_label_filters_and_latest(store: MetricsStore) -> None:
    store.write(ramp("d1", 5, sensor="cpu") + ramp("d1", 7, sensor="gpu") + ramp("d2", 3))
    gpu = store.query_range(
        metric="temperature_celsius",
        device="d1",
        labels={"sensor": "gpu"},
        start=T0,
        end=T0 + 3_600_000,
    )
    assert len(gpu) == 7 and set(gpu["sensor"]) == {"gpu"}
    latest = store.latest(metric="temperature_celsius")
    by_series = {(r.device, r.sensor): r.value for r in latest.itertuples()}
    assert by_series == {("d1", "cpu"): 4.0, ("d1", "gpu"): 6.0, ("d2", "cpu"): 2.0}
    latest_d2 = store.latest(metric="temperature_celsius", device="d2")
    assert latest_d2["time"].iloc[0] == pd.Timestamp(T0 + 2 * 60_000, unit="ms", tz="UTC")


def test_list_series(store: MetricsStore) -> None:
    store.write(ramp("d1", 2) + ramp("d2", 2, sensor="tj"))
    store.write([Sample("fan_speed_rpm", {"device": "d1", "site": "s2", "fan": "0"}, 1e3, T0)])
    assert store.list_series(metric="temperature_celsius") == [
        ("temperature_celsius", (("device", "d1"), ("sensor", "cpu"), ("site", "s1"))),
        ("temperature_celsius", (("device", "d2"), ("sensor", "tj"), ("site", "s1"))),
    ]
    assert [k[0] for k in store.list_series(device="d1")] == [
        "fan_speed_rpm",
        "temperature_celsius",
    ]
    assert [k[0] for k in store.list_series(site="s2")] == ["fan_speed_rpm"]


NASTY_IDS = [
    "quote'd",
    'double"quote',
    "back\\slash",
    "x' OR 1=1 --",
    "' OR ''='",
    'a" OR "1"="1',
    "semi;colon DROP MEASUREMENT temperature_celsius",
    "spaces and,commas=equals",
    "ünïcødé-设备",
]


def test_nasty_device_ids_round_trip_and_never_inject(store: MetricsStore) -> None:
    store.write([temp(dev, float(i), T0 + i) for i, dev in enumerate(NASTY_IDS)])
    store.write(ramp("victim", 3))
    for i, dev in enumerate(NASTY_IDS):
        df = store.query_range(metric="temperature_celsius", device=dev, start=T0, end=T0 + 10**6)
        assert list(df["device"]) == [dev], dev
        assert list(df["value"]) == [float(i)]
        assert list(store.latest(metric="temperature_celsius", device=dev)["device"]) == [dev]
    # Ids that only look like an injection select nothing, and break nothing.
    for probe in ["x' OR 1=1", "x\\' OR 1=1 --", "victim' OR device='d", "a\nb", "x\\"]:
        df = store.query_range(metric="temperature_celsius", device=probe, start=T0, end=T0 + 10**6)
        assert df.empty, probe
        assert store.list_series(device=probe) == []
    df = store.query_range(
        metric="temperature_celsius", labels={"sensor": "cpu' OR 1=1"}, start=T0, end=T0 + 10**6
    )
    assert df.empty
    assert store.count() == len(NASTY_IDS) + 3  # nothing was dropped by a crafted id


def test_unrepresentable_label_values_are_rejected_clearly(store: MetricsStore) -> None:
    result = store.write([temp("a\nb", 1.0, T0), temp("trailing\\", 1.0, T0), temp("ok", 1.0, T0)])
    assert result.written == 1
    assert "line break" in result.errors[0].message
    assert "backslash" in result.errors[1].message


def test_bad_queries_raise_store_error(store: MetricsStore) -> None:
    with pytest.raises(StoreError, match="aggregation"):
        store.query_range(metric="m", start=T0, end=T0 + 1, step_s=60, agg="median")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="end must be after start"):
        store.query_range(metric="m", start=T0, end=T0)


def test_empty_results_have_the_common_columns(store: MetricsStore) -> None:
    df = store.query_range(metric="nothing_here", start=T0, end=T0 + 1000)
    assert list(df.columns) == ["time", "value"] and df.empty


def test_several_metrics_read_as_one_at_a_time(store: MetricsStore) -> None:
    store.write(ramp("d1", 5) + ramp("d2", 3, sensor="gpu"))
    store.write(
        [
            Sample("fan_speed_rpm", {"device": "d1", "site": "s1", "fan": "0"}, 1e3, T0),
            Sample("fan_speed_rpm", {"device": "d3", "site": "s2", "fan": "0"}, 2e3, T0),
        ]
    )
    metrics = ["temperature_celsius", "nothing_here", "fan_speed_rpm"]
    end = T0 + 3_600_000
    read = list(store.query_ranges(metrics=metrics, start=T0, end=end, sites=["s1"]))
    assert [m for m, _ in read] == metrics
    for metric, df in read:
        alone = store.query_range(metric=metric, start=T0, end=end, sites=["s1"])
        pd.testing.assert_frame_equal(df, alone)
    assert set(read[2][1]["device"]) == {"d1"}
    with pytest.raises(StoreError, match="end must be after start"):
        list(store.query_ranges(metrics=metrics, start=T0, end=T0))
