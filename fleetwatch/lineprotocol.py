"""InfluxDB line protocol encoding with millisecond precision.

A sample becomes ``metric,tag=value,... value=<float> <ts_ms>``: the metric is the measurement,
labels are tags (sorted, as InfluxDB prefers), the value is the one float field ``value``.
Label sets repeat across a batch, so their escaped form is cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from fleetwatch.telemetry import Sample

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


def escape_tag(text: str) -> str:
    return text.translate(_TAG_ESCAPES)


@lru_cache(maxsize=65536)
def _series_prefix(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    tags = "".join(f",{k}={escape_tag(v)}" for k, v in labels)
    return f"{name.translate(_MEASUREMENT_ESCAPES)}{tags} value="


def series_prefix(name: str, labels: Mapping[str, str]) -> str:
    return _series_prefix(name, tuple(sorted(labels.items())))


def encode(samples: Iterable[Sample]) -> bytes:
    """Line protocol for a batch (precision ms), newline-terminated."""
    parts = [
        f"{_series_prefix(s.name, tuple(sorted(s.labels.items())))}{s.value!r} {s.timestamp_ms}\n"
        for s in samples
    ]
    return "".join(parts).encode()
