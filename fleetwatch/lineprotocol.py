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


_PREFIXES: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
_PREFIXES_LIMIT = 200_000


def encode(samples: Iterable[Sample]) -> bytes:
    """Line protocol for a batch (precision ms), newline-terminated."""
    prefixes = _PREFIXES
    parts: list[str] = []
    append = parts.append
    for s in samples:
        # Keyed on the labels in their own order: cheaper than sorting them for every sample.
        key = (s.name, tuple(s.labels.items()))
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = _series_prefix(s.name, tuple(sorted(s.labels.items())))
            if len(prefixes) >= _PREFIXES_LIMIT:
                prefixes.clear()
            prefixes[key] = prefix
        append(f"{prefix}{s.value!r} {s.timestamp_ms}\n")
    return "".join(parts).encode()
