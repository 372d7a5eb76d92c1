"""fleetwatch's own Prometheus metrics, served by every long-running process."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

STORE_POINTS_WRITTEN = Counter(
    "fleetwatch_store_points_written_total", "Points acknowledged by the metrics store", ["backend"]
)
STORE_WRITE_ERRORS = Counter(
    "fleetwatch_store_write_errors_total", "Store writes that failed after retries", ["backend"]
)
STORE_WRITE_RETRIES = Counter(
    "fleetwatch_store_write_retries_total", "Store write attempts retried", ["backend"]
)
STORE_WRITE_SECONDS = Histogram(
    "fleetwatch_store_write_seconds", "Latency of one store write call", ["backend"]
)
STORE_QUERY_SECONDS = Histogram(
    "fleetwatch_store_query_seconds", "Latency of one store read", ["backend"]
)
TASK_SECONDS = Histogram("fleetwatch_task_seconds", "Duration of Celery tasks", ["task"])
TASK_FAILURES = Counter("fleetwatch_task_failures_total", "Celery tasks that raised", ["task"])


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics of this process on a background thread."""
    start_http_server(port, addr=host)
