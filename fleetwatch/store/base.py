"""The metrics store contract shared by the InfluxDB and embedded SQLite backends.

Semantics both backends keep (one contract test suite proves it):

- a point is identified by metric + label set + timestamp (ms); writing it again replaces the
  value, so re-sending a batch never duplicates data;
- ``write`` validates every sample, stores the valid ones and reports each invalid one;
- reads return pandas DataFrames with a UTC ``time`` column, ``value`` and one column per label;
- downsampling buckets are aligned to the epoch (``floor(ts / step) * step``), as InfluxQL's
  ``GROUP BY time(step)`` does, and aggregate with mean, max, min or last.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from fleetwatch import selfmetrics
from fleetwatch.telemetry import Sample, SampleError, SeriesKey, partition, to_ms

Aggregation = Literal["mean", "max", "min", "last"]
AGGREGATIONS: tuple[Aggregation, ...] = ("mean", "max", "min", "last")


class StoreError(Exception):
    """A store operation failed for a reason the caller cannot fix by retrying."""


class StoreUnavailable(StoreError):
    """The store could not be reached or kept failing after bounded retries; retry later.

    Nothing of the failed request is reported as written.
    """


@dataclass(slots=True)
class WriteResult:
    written: int = 0
    errors: list[SampleError] = field(default_factory=list)


TimeLike = datetime | int | float


class MetricsStore(ABC):
    """Where samples live. Construct through :func:`fleetwatch.store.open_store`."""

    backend: str

    def write(self, samples: Iterable[Sample]) -> WriteResult:
        """Validate and store a batch; invalid samples are reported and the rest stored."""
        part = partition(samples)
        if part.valid:
            self.write_valid(part.valid)
        return WriteResult(written=len(part.valid), errors=part.errors)

    def write_valid(self, samples: Sequence[Sample]) -> int:
        """Store samples already validated by the caller (e.g. the ingest endpoint)."""
        started = time.perf_counter()
        try:
            self._write(samples)
        except Exception:
            selfmetrics.STORE_WRITE_ERRORS.labels(self.backend).inc()
            raise
        selfmetrics.STORE_WRITE_SECONDS.labels(self.backend).observe(time.perf_counter() - started)
        selfmetrics.STORE_POINTS_WRITTEN.labels(self.backend).inc(len(samples))
        return len(samples)

    @abstractmethod
    def _write(self, samples: Sequence[Sample]) -> None: ...

    @abstractmethod
    def query_range(
        self,
        *,
        metric: str,
        start: TimeLike,
        end: TimeLike,
        device: str | None = None,
        labels: Mapping[str, str] | None = None,
        step_s: float | None = None,
        agg: Aggregation = "mean",
        sites: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Points of ``metric`` with start <= time < end, optionally downsampled per step.

        ``sites`` restricts the result to series of those sites (the analysis reads its shard).
        """

    def query_ranges(
        self,
        *,
        metrics: Sequence[str],
        start: TimeLike,
        end: TimeLike,
        sites: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """Raw points of several metrics, ``(metric, frame)`` in the order given, each frame
        what ``query_range`` returns for it.

        A backend may read the next metric while the caller works on the one it was handed
        (the analysis reads every scored metric of a shard each cycle).
        """
        for metric in metrics:
            yield metric, self.query_range(metric=metric, start=start, end=end, sites=sites)

    @abstractmethod
    def latest(
        self,
        *,
        metric: str,
        device: str | None = None,
        labels: Mapping[str, str] | None = None,
        sites: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The newest point of every matching series, one row per series."""

    @abstractmethod
    def list_series(
        self, *, metric: str | None = None, device: str | None = None, site: str | None = None
    ) -> list[SeriesKey]:
        """Series identities (metric, sorted label pairs) that match."""

    @abstractmethod
    def count(self, metric: str | None = None) -> int:
        """Number of stored points (of one metric, or all)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> MetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_query(agg: str, step_s: float | None, start_ms: int, end_ms: int) -> None:
    if agg not in AGGREGATIONS:
        raise StoreError(f"aggregation {agg!r} is not one of {', '.join(AGGREGATIONS)}")
    if step_s is not None and step_s <= 0:
        raise StoreError(f"step must be positive, got {step_s}")
    if end_ms <= start_ms:
        raise StoreError("end must be after start")


def time_bounds(start: TimeLike, end: TimeLike) -> tuple[int, int]:
    return to_ms(start), to_ms(end)


Block = tuple[Mapping[str, str], Sequence[int], Sequence[float]]


def frame(blocks: Sequence[Block]) -> pd.DataFrame:
    """Build the common read result from per-series blocks (labels, timestamps ms, values).

    Rows are sorted by series labels, then time. Label columns are filled per series with
    ``numpy.repeat``, not per row, so reading 250,000 points stays cheap.
    """
    blocks = [b for b in blocks if len(b[1])]
    label_keys = sorted({k for labels, _, _ in blocks for k in labels})
    blocks = sorted(blocks, key=lambda b: tuple(b[0].get(k) or "" for k in label_keys))
    if not blocks:
        return pd.DataFrame(
            {
                "time": pd.Series([], dtype="datetime64[ms, UTC]"),
                "value": pd.Series([], dtype="float64"),
            }
        )
    sizes = np.fromiter((len(b[1]) for b in blocks), dtype=np.int64, count=len(blocks))
    ts = np.concatenate([np.asarray(b[1], dtype=np.int64) for b in blocks])
    values = np.concatenate([np.asarray(b[2], dtype=np.float64) for b in blocks])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    order = np.concatenate(
        [s + np.argsort(ts[s : s + n], kind="stable") for s, n in zip(starts, sizes, strict=True)]
    )
    data: dict[str, object] = {
        "time": pd.to_datetime(ts[order], unit="ms", utc=True),
        "value": values[order],
    }
    for key in label_keys:
        per_series = np.array([b[0].get(key) for b in blocks], dtype=object)
        data[key] = np.repeat(per_series, sizes)
    return pd.DataFrame(data, columns=["time", "value", *label_keys])
