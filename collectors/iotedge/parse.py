"""IoT Edge metrics: exposition text to fleetwatch samples (raw families plus canonical names).

Pure functions. :func:`parse_exposition` keeps every exposed family under its exposed name and
labels (``edge_device`` becomes ``device``; ``site`` is added) and adds the canonical series of
``docs/metrics.md``. NaN summary quantiles mean "nothing observed for ~10 minutes": they are
skipped and counted in :attr:`ExpositionResult.no_observation`, never reported as errors.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from math import isnan
from operator import attrgetter

from collectors.iotedge._sample import new_sample
from collectors.iotedge.exposition import Exposition, MetricFamily, Relabel, tokenize
from fleetwatch.plugins import CollectError, CollectResult, Sample
from fleetwatch.telemetry import now_ms

# Exposed label names that fleetwatch reserves: kept under an ``exported_`` name, as
# Prometheus does for target labels that clash with its own.
_CLASHING = ("device", "site", "time", "value")


@dataclass(slots=True)
class ExpositionResult(CollectResult):
    """A collect result that also carries the tokenized exposition and the NaN-quantile count."""

    no_observation: int = 0
    exposition: Exposition | None = None
    instance_numbers: dict[str, set[str]] = field(default_factory=dict)


def relabel_for(device: str | None, site: str) -> Relabel:
    """The relabelling of exposed labels: ``edge_device`` -> ``device`` unless one is given."""
    rename = [(name, f"exported_{name}") for name in _CLASHING]
    if device is None:
        rename.append(("edge_device", "device"))
        return Relabel(rename=tuple(rename), add=(("site", site),), drop_empty=True)
    return Relabel(
        rename=tuple(rename),
        drop=frozenset({"edge_device"}),
        add=(("device", device), ("site", site)),
        drop_empty=True,
    )


def parse_exposition(
    text: str,
    *,
    device: str | None = None,
    site: str = "default",
    timestamp_ms: int | None = None,
    source: str = "",
    openmetrics: bool | None = None,
    keep_raw: bool = True,
) -> ExpositionResult:
    """Parse one scrape of edgeAgent, edgeHub or any module's Prometheus endpoint.

    ``device`` overrides the ``edge_device`` label; ``timestamp_ms`` stamps samples that carry
    no timestamp of their own (default: now). Never raises on bad input.
    """
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    expo = tokenize(
        text,
        source=source,
        openmetrics=openmetrics,
        relabel=relabel_for(device, site),
        timestamp_ms=ts,
    )
    result = ExpositionResult(errors=list(expo.errors), exposition=expo)
    missing_device = 0
    for fam in expo.families.values():
        kept = fam.samples
        if not kept:
            continue
        # instance_number is one GUID per runtime process, on every series it exposes
        first = kept[0].labels
        if first.get("instance_number") and "device" in first:
            result.instance_numbers.setdefault(first["device"], set()).add(first["instance_number"])
        if fam.type == "summary" and any(map(isnan, map(_value, kept))):
            kept = [s for s in kept if s.value == s.value or "quantile" not in s.labels]
            result.no_observation += len(fam.samples) - len(kept)
        # else the relabelling gave every sample the configured device
        if device is None and not _all_labelled(kept, "device"):
            with_device = [s for s in kept if "device" in s.labels]
            missing_device += len(kept) - len(with_device)
            kept = with_device
        if keep_raw:
            result.samples.extend(kept)
    if missing_device:
        result.errors.append(
            CollectError(
                source,
                f"{missing_device} samples have no edge_device label and no device is "
                "configured; they were dropped",
            )
        )
    result.samples.extend(canonical_samples(expo.families, ts))
    return result


def _all_labelled(samples: list[Sample], label: str) -> bool:
    # a plain loop: all() over a generator takes twice as long, on every sample of a scrape
    for s in samples:  # noqa: SIM110
        if label not in s.labels:
            return False
    return True


# Exposed family -> (canonical name, exposed label -> canonical label). Values of series that
# end up with the same labels are added (a module exposed under two module_version values).
LabelMapping = tuple[tuple[str, str], ...]
_DIRECT: dict[str, tuple[str, LabelMapping]] = {
    "edgeAgent_used_memory_bytes": ("memory_used_bytes", (("module_name", "module"),)),
    "edgeAgent_total_memory_bytes": ("memory_total_bytes", (("module_name", "module"),)),
    "edgeAgent_available_disk_space_bytes": ("disk_free_bytes", (("disk_name", "disk"),)),
    "edgeAgent_total_disk_space_bytes": ("disk_total_bytes", (("disk_name", "disk"),)),
    "edgeAgent_total_network_in_bytes": (
        "network_receive_bytes_total",
        (("module_name", "module"),),
    ),
    "edgeAgent_total_network_out_bytes": (
        "network_transmit_bytes_total",
        (("module_name", "module"),),
    ),
    "edgeAgent_module_start_total": ("module_restarts_total", (("module_name", "module"),)),
    "edgehub_queue_length": (
        "message_queue_length",
        (("endpoint", "endpoint"), ("priority", "priority")),
    ),
    "edgehub_offline_count_total": ("uplink_offline_total", ()),
}
_MODULE = (("module_name", "module"),)
_value = attrgetter("value")
HOST_MODULE = "host"  # edgeAgent's whole-device series; canonical series drop the module label

# One canonical series while its value is worked out: device, site and the values of the (at
# most two) mapped labels, "" for none. Flat, so that placing a sample costs a single tuple.
Series = tuple[str, str, str, str]
assert all(len(mapping) <= 2 for _, mapping in _DIRECT.values())


def _two(mapping: LabelMapping) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two label pairs of a mapping, padded with ("", ""): no label is named ""."""
    padded = (*mapping, ("", ""), ("", ""))
    return padded[0], padded[1]


def canonical_samples(families: dict[str, MetricFamily], ts: int) -> list[Sample]:
    """The canonical series (see docs/metrics.md) derived from one exposition's families."""
    out: list[Sample] = []
    for family, (canonical, mapping) in _DIRECT.items():
        fam = families.get(family)
        if fam is not None:
            sums = _per_series(fam.samples, mapping, name=family)
            out.extend(_samples(canonical, mapping, sums, ts))
    cpu = families.get("edgeAgent_used_cpu_percent")
    if cpu is not None:
        medians = [s for s in cpu.samples if s.labels.get("quantile") == "0.5"]
        sums = _per_series(medians, _MODULE, scale=0.01)
        out.extend(_samples("cpu_utilization_ratio", _MODULE, sums, ts))
    out.extend(_availability(families, ts))
    out.extend(
        _mean_of_summary(
            families, "edgeAgent_deployment_time_seconds", "deployment_duration_seconds", ts
        )
    )
    return out


def _series(labels: Mapping[str, str], mapping: LabelMapping) -> Series:
    """The canonical series of a sample's labels.

    A mapped label that is empty or absent leaves no value, and so does the host module.
    """
    (first, canonical), (second, _) = _two(mapping)
    a = labels.get(first, "")
    if canonical == "module" and a == HOST_MODULE:
        a = ""
    return (labels["device"], labels["site"], a, labels.get(second, ""))


def _per_series(
    samples: Iterable[Sample],
    mapping: LabelMapping,
    *,
    name: str | None = None,
    scale: float = 1.0,
    add: bool = True,
) -> dict[Series, float]:
    """The finite values of samples (called ``name`` if given) per series: times ``scale`` and
    added up, or else the last one."""
    (first, canonical), (second, _) = _two(mapping)
    host = HOST_MODULE if canonical == "module" else None
    values: dict[Series, float] = {}
    get = values.get
    for s in samples:
        value = s.value
        if value - value == 0.0 and (name is None or s.name == name):  # finite
            labels = s.labels
            a = labels.get(first, "")  # the series, as _series places it (inlined: hot)
            try:
                device = labels["device"]
            except KeyError:  # no edge_device and no device configured: reported, not mapped
                continue
            key = (device, labels["site"], "" if a == host else a, labels.get(second, ""))
            values[key] = get(key, 0.0) + value * scale if add else value
    return values


def _samples(
    name: str, mapping: LabelMapping, values: dict[Series, float], ts: int
) -> list[Sample]:
    """One sample per series, labelled with device, site and the mapped labels it has."""
    (_, first), (_, second) = _two(mapping)
    out = []
    for (device, site, a, b), value in values.items():
        labels = {"device": device, "site": site}
        if a:
            labels[first] = a
        if b:
            labels[second] = b
        out.append(new_sample(name, labels, value, ts))
    return out


def _availability(families: dict[str, MetricFamily], ts: int) -> list[Sample]:
    """Time running correctly / time expected running, per module (when expected > 0)."""
    running = _last_values(families.get("edgeAgent_total_time_running_correctly_seconds"))
    expected = _last_values(families.get("edgeAgent_total_time_expected_running_seconds"))
    ratios = {
        series: running[series] / total
        for series, total in expected.items()
        if total > 0 and series in running
    }
    return _samples("module_availability_ratio", _MODULE, ratios, ts)


def _last_values(fam: MetricFamily | None) -> dict[Series, float]:
    """The last finite value of each module's series (samples named as the family only)."""
    return {} if fam is None else _per_series(fam.samples, _MODULE, name=fam.name, add=False)


def _mean_of_summary(
    families: dict[str, MetricFamily], family: str, canonical: str, ts: int
) -> list[Sample]:
    """``_sum / _count`` of a summary: its quantiles go NaN between rare observations."""
    fam = families.get(family)
    if fam is None:
        return []
    totals: dict[Series, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in fam.samples:
        if (
            s.name in (family + "_sum", family + "_count")
            and math.isfinite(s.value)
            and "device" in s.labels
        ):
            totals[_series(s.labels, ())][s.name.endswith("_count")] += s.value
    means = {series: total / count for series, (total, count) in totals.items() if count > 0}
    return _samples(canonical, (), means, ts)
