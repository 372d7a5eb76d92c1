"""The agent's own ``/metrics`` (Prometheus text) and ``/healthz`` (JSON), on one small server.

Metrics are read from :meth:`Agent.stats` at scrape time through a custom collector, so each
agent (several may run in one ``fleetwatch demo`` process) has its own registry and nothing is
counted twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

StatsSource = Callable[[], dict[str, Any]]


class AgentMetrics:
    """A prometheus-client collector over an agent's stats dictionary."""

    def __init__(self, stats: StatsSource) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        st = self._stats()
        lane_bytes = GaugeMetricFamily(
            "fleetwatch_agent_buffer_bytes", "Unsent bytes in the disk buffer", labels=["lane"]
        )
        lane_samples = GaugeMetricFamily(
            "fleetwatch_agent_buffer_samples", "Unsent samples in the disk buffer", labels=["lane"]
        )
        oldest = GaugeMetricFamily(
            "fleetwatch_agent_oldest_unsent_age_seconds",
            "Age of the oldest unsent sample's append",
            labels=["lane"],
        )
        for lane, lane_stats in st["buffer"].items():
            lane_bytes.add_metric([lane], lane_stats["bytes"])
            lane_samples.add_metric([lane], lane_stats["samples"])
            oldest.add_metric([lane], lane_stats["oldest_unsent_age_s"])
        yield from (lane_bytes, lane_samples, oldest)
        yield _counter("bytes_sent", "Bytes on the wire to the uplink (estimate)", st["bytes_sent"])
        yield _counter("body_bytes_sent", "Request body bytes accepted", st["body_bytes_sent"])
        yield _counter("samples_sent", "Samples accepted by the uplink", st["samples_sent"])
        yield _counter("requests", "Uplink requests answered 2xx", st["requests"])
        yield _counter("samples_suppressed", "Samples held back by deadband", st["suppressed"])
        yield _counter(
            "buffer_write_errors", "Appends the disk refused (the source keeps its data)",
            st["buffer_write_errors"],
        )  # fmt: skip
        drops = CounterMetricFamily(
            "fleetwatch_agent_dropped_samples", "Samples dropped", labels=["lane", "reason"]
        )
        for key, n in st["dropped"].items():
            lane, reason = key.split("/", 1)
            drops.add_metric([lane, reason], n)
        yield drops
        errors = CounterMetricFamily(
            "fleetwatch_agent_send_errors", "Failed uplink requests", labels=["kind"]
        )
        for kind, n in st["send_errors"].items():
            errors.add_metric([kind], n)
        yield errors
        collector_errors = CounterMetricFamily(
            "fleetwatch_agent_collector_errors",
            "Collector errors (bad lines, failed reads, exceptions)",
            labels=["instance"],
        )
        for name, n in st["collector_errors"].items():
            collector_errors.add_metric([name], n)
        yield collector_errors


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"fleetwatch_agent_{name}", doc, value=value)


class StatusServer:
    """Serves /metrics and /healthz on a background thread."""

    def __init__(
        self, stats: StatsSource, healthy: Callable[[], bool], host: str, port: int
    ) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AgentMetrics(stats))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._reply(200, "text/plain; version=0.0.4", generate_latest(registry))
                elif self.path.startswith("/healthz"):
                    ok = healthy()
                    body = {"status": "ok" if ok else "unhealthy", **stats()}
                    self._reply(200 if ok else 503, "application/json", json.dumps(body).encode())
                else:
                    self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would flood the log

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
