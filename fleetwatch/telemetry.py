"""Telemetry value types: one sample, its series identity, and validation.

A sample is a metric name, a label set (always ``device`` and ``site``), a float value and a UTC
timestamp in integer milliseconds since the epoch. Names and label keys follow the Prometheus
rules; label values may be any text except line breaks and NUL (line protocol cannot carry them).
An empty label value means "no label", as in Prometheus, and is dropped by :func:`make_sample`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
REQUIRED_LABELS = ("device", "site")
# "time" is InfluxDB's own column and "value" is the field fleetwatch stores samples in.
RESERVED_LABELS = frozenset({"time", "value"})
_BAD_VALUE_CHARS = re.compile(r"[\n\r\x00]")
# InfluxDB line protocol has no escape for a backslash itself: "\\," or a trailing "\" cannot be
# stored faithfully, so such values are refused up front (a backslash elsewhere is fine).
_BAD_BACKSLASH = re.compile(r"\\(?:[,= \\]|$)")

LabelSet = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, LabelSet]


class InvalidSample(ValueError):
    """A sample that breaks the naming or value rules; the message names the sample and the rule."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of one series."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_ms: int

    @property
    def device(self) -> str:
        return self.labels.get("device", "")

    @property
    def site(self) -> str:
        return self.labels.get("site", "")

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def series(self) -> SeriesKey:
        return series_key(self.name, self.labels)

    def describe(self) -> str:
        """A short human reference to this sample, for error messages."""
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}} @ {self.timestamp_ms}"


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    """The identity of a series: its name and its sorted label pairs."""
    return name, tuple(sorted(labels.items()))


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def to_ms(ts: datetime | int | float) -> int:
    """Epoch milliseconds from an aware datetime, or from a number of epoch seconds/milliseconds.

    Numbers below 1e11 are taken as seconds (1e11 s is the year 5138), others as milliseconds.
    Naive datetimes are rejected: time is UTC everywhere and must be said so.
    """
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError(f"naive datetime {ts.isoformat()}: give a timezone (UTC)")
        return round(ts.timestamp() * 1000)
    if ts < 1e11:
        return round(ts * 1000)
    return int(ts)


def make_sample(
    name: str,
    labels: Mapping[str, str],
    value: float,
    timestamp: datetime | int | float,
) -> Sample:
    """Build a sample, dropping empty label values and normalising the timestamp to ms."""
    clean = {k: v for k, v in labels.items() if v != ""}
    return Sample(name, clean, float(value), to_ms(timestamp))


_KNOWN_GOOD_SERIES: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
_KNOWN_GOOD_LIMIT = 200_000


def check_sample(sample: Sample, *, allow_non_finite: bool = False) -> None:
    """Raise :class:`InvalidSample` naming the sample and the broken rule, or return None."""
    try:
        identity = (sample.name, tuple(sample.labels.items()))
    except (TypeError, AttributeError):
        identity = None
    if identity is None or identity not in _KNOWN_GOOD_SERIES:
        _check_series(sample)
        if identity is not None and len(_KNOWN_GOOD_SERIES) < _KNOWN_GOOD_LIMIT:
            _KNOWN_GOOD_SERIES.add(identity)  # series repeat: validate each label set once
    value = sample.value
    if type(value) is not float and (
        isinstance(value, bool) or not isinstance(value, (int, float))
    ):
        raise InvalidSample(f"{sample.describe()}: value {value!r} is not a number")
    if not allow_non_finite and not math.isfinite(value):
        raise InvalidSample(f"{sample.describe()}: value {value!r} is not finite")
    if not isinstance(sample.timestamp_ms, int) or sample.timestamp_ms < 0:
        raise InvalidSample(f"{sample.describe()}: timestamp must be non-negative epoch ms")


def _check_series(sample: Sample) -> None:
    if not isinstance(sample.name, str) or not METRIC_NAME_RE.match(sample.name):
        raise InvalidSample(
            f"{sample.describe()}: metric name {sample.name!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*"
        )
    for required in REQUIRED_LABELS:
        if not sample.labels.get(required):
            raise InvalidSample(f"{sample.describe()}: missing required label {required!r}")
    for key, val in sample.labels.items():
        if not LABEL_NAME_RE.match(key) or key.startswith("__"):
            raise InvalidSample(
                f"{sample.describe()}: label name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]* "
                "and not start with '__'"
            )
        if key in RESERVED_LABELS:
            raise InvalidSample(f"{sample.describe()}: label name {key!r} is reserved")
        if not isinstance(val, str):
            raise InvalidSample(f"{sample.describe()}: label {key!r} value must be text")
        if _BAD_VALUE_CHARS.search(val):
            raise InvalidSample(
                f"{sample.describe()}: label {key!r} value contains a line break or NUL"
            )
        if "\\" in val and _BAD_BACKSLASH.search(val):
            raise InvalidSample(
                f"{sample.describe()}: label {key!r} value has a backslash at its end or before "
                "a comma, '=', space or backslash, which line protocol cannot carry"
            )


@dataclass(frozen=True, slots=True)
class SampleError:
    """A rejected sample: its position in the batch and why."""

    index: int
    message: str


@dataclass(slots=True)
class Partition:
    """A batch split into the samples that pass validation and the errors of those that do not."""

    valid: list[Sample] = field(default_factory=list)
    errors: list[SampleError] = field(default_factory=list)


def partition(samples: Iterable[Sample], *, allow_non_finite: bool = False) -> Partition:
    """Split a batch into valid samples and per-sample errors; one bad sample loses nothing else."""
    out = Partition()
    for i, sample in enumerate(samples):
        try:
            check_sample(sample, allow_non_finite=allow_non_finite)
        except InvalidSample as exc:
            out.errors.append(SampleError(i, str(exc)))
        else:
            out.valid.append(sample)
    return out
