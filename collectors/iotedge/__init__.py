"""Azure IoT Edge: edgeAgent and edgeHub built-in metrics, and any module's Prometheus endpoint.

Entry point ``iotedge`` = :class:`collectors.iotedge.plugin.IoTEdgeCollector`, configured by
:class:`collectors.iotedge.config.IoTEdgeConfig` (``urls`` to scrape with httpx, or ``file``).

Pure functions to call directly (a simulator's output, a saved scrape):

``collectors.iotedge.parse.parse_exposition(text, *, device=None, site="default",
timestamp_ms=None, source="", openmetrics=None, keep_raw=True) -> ExpositionResult``
    Prometheus text 0.0.4 or OpenMetrics to fleetwatch samples: every exposed family under its
    exposed name and labels (``edge_device`` -> ``device``, ``site`` added, empty labels
    dropped) plus the canonical series of docs/metrics.md. ``result.errors`` has one entry per
    bad line, ``result.no_observation`` counts NaN summary quantiles (skipped, not errors) and
    ``result.instance_numbers`` maps each device to the runtime ``instance_number`` seen.

``collectors.iotedge.parse.canonical_samples(families, ts) -> list[Sample]``
    Only the canonical series, from already tokenized families.

``collectors.iotedge.exposition.tokenize(text, *, source="", openmetrics=None, relabel=None)
-> Exposition``
    The tokenizer alone: families (name, type, help, unit, samples) with names and labels as
    exposed, and per-line errors. Handles HELP/TYPE/UNIT, escaped label values (JSON inside
    labels), NaN/±Inf, .NET numbers such as ``6.69E-05``, timestamps, exemplars, families with
    no samples, and untyped (unknown) families.
"""
