"""Building :class:`fleetwatch.plugins.Sample` objects fast.

Sample is a frozen, slotted dataclass whose generated ``__init__`` only assigns its four slots.
Assigning them through the slot descriptors builds the same object in half the time, which
matters at hundreds of thousands of samples per second. tests/collectors checks that both ways
give equal samples, and this module refuses to load should Sample ever change shape.
"""

from __future__ import annotations

from typing import Any

from fleetwatch.plugins import Sample

if tuple(getattr(Sample, "__slots__", ())) != ("name", "labels", "value", "timestamp_ms") or (
    hasattr(Sample, "__post_init__")
):  # pragma: no cover
    raise ImportError("fleetwatch.telemetry.Sample changed shape; update collectors.iotedge")

_slot: dict[str, Any] = dict(vars(Sample))
set_name = _slot["name"].__set__
set_labels = _slot["labels"].__set__
set_value = _slot["value"].__set__
set_timestamp = _slot["timestamp_ms"].__set__
object_new = object.__new__


def new_sample(name: str, labels: dict[str, str], value: float, timestamp_ms: int) -> Sample:
    """``Sample(name, labels, value, timestamp_ms)``, built the fast way."""
    sample: Sample = object_new(Sample)
    set_name(sample, name)
    set_labels(sample, labels)
    set_value(sample, value)
    set_timestamp(sample, timestamp_ms)
    return sample
