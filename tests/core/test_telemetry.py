from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetwatch.telemetry import (
    InvalidSample,
    Sample,
    check_sample,
    make_sample,
    partition,
    series_key,
    to_ms,
)


def ok(**labels: str) -> Sample:
    return Sample("temperature_celsius", {"device": "d", "site": "s", **labels}, 40.0, 1_000)


def test_make_sample_drops_empty_labels_and_normalises_time() -> None:
    s = make_sample(
        "m", {"device": "d", "site": "s", "module": ""}, 3, datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert s.labels == {"device": "d", "site": "s"}
    assert s.value == 3.0 and isinstance(s.value, float)
    assert s.timestamp_ms == 1_767_225_600_000
    assert s.time == datetime(2026, 1, 1, tzinfo=UTC)


def test_to_ms_accepts_seconds_ms_and_aware_datetimes_only() -> None:
    assert to_ms(1_700_000_000) == 1_700_000_000_000
    assert to_ms(1_700_000_000.5) == 1_700_000_000_500
    assert to_ms(1_700_000_000_123) == 1_700_000_000_123
    cet = timezone(timedelta(hours=1))
    assert to_ms(datetime(2026, 1, 1, 1, tzinfo=cet)) == to_ms(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (Sample("1bad", {"device": "d", "site": "s"}, 1.0, 1), "metric name '1bad'"),
        (Sample("temp-c", {"device": "d", "site": "s"}, 1.0, 1), "metric name 'temp-c'"),
        (Sample("m", {"site": "s"}, 1.0, 1), "missing required label 'device'"),
        (Sample("m", {"device": "d"}, 1.0, 1), "missing required label 'site'"),
        (Sample("m", {"device": "d", "site": "s", "bad-key": "x"}, 1.0, 1), "label name 'bad-key'"),
        (Sample("m", {"device": "d", "site": "s", "__name__": "x"}, 1.0, 1), "not start with '__'"),
        (Sample("m", {"device": "d", "site": "s", "time": "x"}, 1.0, 1), "reserved"),
        (Sample("m", {"device": "d", "site": "s"}, math.inf, 1), "not finite"),
        (Sample("m", {"device": "d", "site": "s"}, math.nan, 1), "not finite"),
        (Sample("m", {"device": "d", "site": "s"}, 1.0, -5), "timestamp"),
        (Sample("m", {"device": "d\n", "site": "s"}, 1.0, 1), "line break"),
    ],
)
def test_invalid_samples_are_named_with_the_rule(sample: Sample, message: str) -> None:
    with pytest.raises(InvalidSample) as info:
        check_sample(sample)
    assert message in str(info.value)
    assert sample.name in str(info.value)  # the error names the sample


def test_non_finite_allowed_when_asked() -> None:
    check_sample(Sample("m", {"device": "d", "site": "s"}, math.nan, 1), allow_non_finite=True)


def test_partition_keeps_order_and_indices() -> None:
    batch = [ok(), Sample("bad name", {}, 1.0, 1), ok(sensor="gpu")]
    part = partition(batch)
    assert part.valid == [batch[0], batch[2]]
    assert [e.index for e in part.errors] == [1]


def test_series_identity_ignores_label_order() -> None:
    assert series_key("m", {"b": "1", "a": "2"}) == series_key("m", {"a": "2", "b": "1"})
    assert ok(sensor="x").series == (
        "temperature_celsius",
        (("device", "d"), ("sensor", "x"), ("site", "s")),
    )


@given(
    st.text(max_size=12),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_check_sample_only_ever_raises_invalid_sample(
    name: str, labels: dict[str, str], value: float
) -> None:
    with contextlib.suppress(InvalidSample):
        check_sample(Sample(name, {"device": "d", "site": "s", **labels}, value, 1))
