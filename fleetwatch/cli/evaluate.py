"""``fleetwatch evaluate``: score the analysis against the simulator's ground truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer


def evaluate(
    seeds: str = typer.Option("1,2,3", help="comma-separated simulator seeds"),
    devices: int = typer.Option(60, min=5, help="devices per simulated fleet"),
    sites: int = typer.Option(3, min=1),
    hours: float = typer.Option(8.0, min=1.0, help="simulated hours per seed"),
    cycle_minutes: float | None = typer.Option(
        None, min=0.5, help="analysis cycle period [default: the beat period, 1 min]"
    ),
    jobs: int = typer.Option(
        min(3, os.cpu_count() or 1), min=1, help="seeds simulated at once, one process each"
    ),
    report: Path | None = typer.Option(None, help="write the full result as JSON here"),
) -> None:
    """Inject one fault of every kind per seed, run the pipeline and print recall, alert
    precision, lead times and false anomaly episodes per device-day (JSON, last line)."""
    from fleetwatch.analysis.evaluate import EvaluationConfig
    from fleetwatch.analysis.evaluate import evaluate as run

    config = EvaluationConfig(
        seeds=tuple(int(s) for s in seeds.split(",") if s.strip()),
        devices=devices,
        sites=sites,
        hours=hours,
        cycle_minutes=cycle_minutes,
    )
    result = run(config, jobs=jobs)
    for kind, figures in result["per_kind"].items():
        typer.echo(
            f"{kind:18} recall {figures['recall']:.2f} ({figures['detected']}/{figures['faults']})"
            f"  median lead {figures['median_lead_minutes']} min"
        )
    for alert in result["false_alerts"]:
        typer.echo(f"false alert: {alert['device']} at minute {alert['minute']}: {alert['reason']}")
    if report is not None:
        report.write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k not in ("faults", "false_alerts")}
    typer.echo(json.dumps(summary))
