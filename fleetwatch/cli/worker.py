"""``fleetwatch worker`` and ``fleetwatch beat``: the Celery processes."""

from __future__ import annotations

import typer

from fleetwatch.cli.common import settings


def worker(
    queues: str = typer.Option(
        "", "--queues", "-Q", help="comma-separated queues (default: all fleetwatch queues)"
    ),
    concurrency: int = typer.Option(0, help="worker processes (default: one per core)"),
    hostname: str = typer.Option("", help="worker node name (default: celery's)"),
) -> None:
    """Run a Celery worker; start as many as you like, on as many machines, on one broker."""
    from fleetwatch import selfmetrics
    from fleetwatch import worker as celery_worker

    config = settings()
    app = celery_worker.configure(config)
    if config.metrics.port is not None:
        selfmetrics.serve(config.metrics.port, config.metrics.host)
    queue_list = queues or ",".join(celery_worker.QUEUES)
    argv = ["worker", f"--loglevel={config.log_level}", "-Q", queue_list]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)


def beat() -> None:
    """Run Celery beat, which schedules the periodic analysis cycle."""
    from fleetwatch import selfmetrics
    from fleetwatch import worker as celery_worker

    config = settings()
    app = celery_worker.configure(config)
    if config.metrics.port is not None:
        selfmetrics.serve(config.metrics.port, config.metrics.host)
    schedule = config.data_dir / "celerybeat-schedule"
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app.start(["beat", f"--loglevel={config.log_level}", "--schedule", str(schedule)])
