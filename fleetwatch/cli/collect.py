"""``fleetwatch collect SOURCE --once``: one collection, printed as JSON lines.

Like ``telegraf --test``: each sample is one line ``{"metric", "labels", "value",
"timestamp"}`` (timestamp in epoch ms) on stdout; each error (a bad line, field, file or request)
is one line on stderr, and so is each event (a counter reset). The exit status is 0 when
anything was collected, 1 when nothing was, 2 for a usage or configuration error.

The collector is found through the ``fleetwatch.collectors`` entry points and configured through
its own ``config_model``: ``--url``, ``--file``, ``--sysfs-root``, ``--device`` and ``--site`` set
the fields ``urls``, ``file``, ``sysfs_root``, ``device`` and ``site`` where the model has them,
and ``--set KEY=VALUE`` sets any other field (VALUE is read as JSON, else as text).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from fleetwatch.plugins import Collector, CollectResult, PluginError, PluginRegistry, Sample

GROUP = "fleetwatch.collectors"


def collect(
    source: str = typer.Argument(..., help="collector name, e.g. iotedge, greengrass, jetson"),
    once: bool = typer.Option(False, "--once", help="run one collection and exit"),
    url: list[str] | None = typer.Option(None, "--url", help="scrape this URL (repeatable)"),
    file: Path | None = typer.Option(
        None, "--file", help="read from a file: Prometheus text, JSON messages, tegrastats log"
    ),
    sysfs_root: Path | None = typer.Option(None, "--sysfs-root", help="read sysfs under this root"),
    device: str | None = typer.Option(None, "--device", help="device label of every sample"),
    site: str | None = typer.Option(None, "--site", help="site label of every sample"),
    settings: list[str] | None = typer.Option(
        None, "--set", help="another config field of the collector: KEY=VALUE (repeatable)"
    ),
    wait: float = typer.Option(
        2.0, "--wait", min=0, help="push sources (MQTT): seconds to listen before collecting"
    ),
) -> None:
    """Run one collection of SOURCE and print its samples as JSON lines."""
    if not once:
        _fail("continuous collection runs in the gateway agent; use --once for one collection")
    plugin = _plugin(source)
    config = _config(
        plugin,
        source,
        url=url,
        file=file,
        sysfs_root=sysfs_root,
        device=device,
        site=site,
        settings=settings or [],
    )
    collector: Collector = plugin(config)
    try:
        result = collector.collect()
        if plugin.capabilities.push and file is None:
            time.sleep(wait)  # the first collect subscribed; give the source time to publish
            result.extend(collector.collect())
    finally:
        collector.close()
    _print(result)
    raise typer.Exit(0 if result.samples else 1)


def _fail(message: str) -> None:
    typer.echo(f"fleetwatch collect: {message}", err=True)
    raise typer.Exit(2)


def _plugin(source: str) -> type[Collector]:
    try:
        registry = PluginRegistry.from_entry_points([GROUP])
        plugin: type[Collector] = registry.get(GROUP, source)
    except PluginError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    return plugin


def _config(
    plugin: type[Collector],
    source: str,
    *,
    url: list[str] | None,
    file: Path | None,
    sysfs_root: Path | None,
    device: str | None,
    site: str | None,
    settings: list[str],
) -> Any:
    model = plugin.config_model
    fields = model.model_fields
    values: dict[str, Any] = {}
    given = {
        "--url": ("urls", url),
        "--file": ("file", file),
        "--sysfs-root": ("sysfs_root", sysfs_root),
        "--device": ("device", device),
        "--site": ("site", site),
    }
    for option, (name, value) in given.items():
        if value is None:
            continue
        if name not in fields:
            _fail(f"{source} does not take {option}")
        values[name] = value
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            _fail(f"--set {item!r}: {source} has no field {key!r}; fields: {', '.join(fields)}")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        _fail(f"invalid {source} configuration: {problems}")


def sample_json(sample: Sample) -> str:
    """One sample as a JSON line; NaN and ±Inf, which JSON lacks, become strings."""
    value: float | str = sample.value
    if not math.isfinite(sample.value):
        value = "NaN" if math.isnan(sample.value) else ("+Inf" if sample.value > 0 else "-Inf")
    return json.dumps(
        {
            "metric": sample.name,
            "labels": dict(sample.labels),
            "value": value,
            "timestamp": sample.timestamp_ms,
        },
        ensure_ascii=False,
    )


def _print(result: CollectResult) -> None:
    for sample in result.samples:
        typer.echo(sample_json(sample))
    for error in result.errors:
        where = error.source + (f":{error.line}" if error.line is not None else "")
        typer.echo(f"error: {where}: {error.message}", err=True)
    for event in result.events:
        typer.echo(f"event: {event}", err=True)
