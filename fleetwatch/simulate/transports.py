"""Real transports for the simulated fleet: HTTP scrape endpoints, MQTT publishes, sysfs files.

- :class:`MetricsServer` serves every IoT Edge device's edgeAgent and edgeHub metrics from one
  threading HTTP server on loopback, under ``/<device>/edgeAgent/metrics`` and
  ``/<device>/edgeHub/metrics``.
- :class:`GreengrassPublisher` publishes fleet-status messages (QoS 1: COMPLETE on a cadence,
  PARTIAL on component status change) and nucleus-emitter arrays to an MQTT broker.
- :class:`SysfsMirror` keeps a ``/sys``-like tree per Jetson/Coral device up to date and appends
  tegrastats lines to ``<device>/tegrastats.log``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetwatch.simulate.formats import greengrass as gg_format
from fleetwatch.simulate.formats.sysfs import SysfsWriter

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsServer:
    """One loopback HTTP server for all simulated IoT Edge devices (port 0 = a free port)."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.requests = 0
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, device_id: str, module: str = "edgeAgent") -> str:
        return f"http://{self.host}:{self.port}/{device_id}/{module}/metrics"

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sim-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def render(self, path: str) -> str | None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or parts[2] != "metrics":
            return None
        device_id, module = parts[0], parts[1]
        try:
            device = self.sim.device(device_id)
        except KeyError:
            return None
        if device.runtime != "iotedge":
            return None
        if module == "edgeAgent":
            return self.sim.edge_agent_metrics(device_id)
        if module == "edgeHub":
            return self.sim.edge_hub_metrics(device_id)
        return None


def _handler_for(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = server.render(self.path)
            server.requests += 1
            if body is None:
                self.send_error(404, "no such device or module")
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # a scrape per device per tick would flood the terminal

    return Handler


class GreengrassPublisher:
    """Publishes the Greengrass devices' telemetry to MQTT (paho-mqtt 2.x).

    ``telemetry_topic`` may contain ``{thing}``; the nucleus' own local topic is
    ``$local/greengrass/telemetry``. The real fleet-status cadence is a day; a shorter
    ``cadence_s`` makes demos and tests see COMPLETE messages.
    """

    def __init__(
        self,
        sim: Simulator,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        telemetry_topic: str = "fleetwatch/{thing}/telemetry",
        cadence_s: float = 300.0,
        emitter_interval_s: float = 60.0,
        client_id: str | None = None,
    ) -> None:
        self.sim = sim
        self.host, self.port = host, port
        self.telemetry_topic = telemetry_topic
        self.cadence_s = cadence_s
        self.emitter_interval_s = emitter_interval_s
        self.client_id = client_id or f"fleetwatch-sim-{sim.config.seed}"
        self.published = 0
        self._client: Any = None
        self._last_complete: dict[int, float] = {}
        self._last_emit: dict[int, float] = {}
        self._last_deployment: dict[int, int] = {}

    def connect(self, timeout_s: float = 3.0) -> bool:
        """Connect to the broker; False (and no client) when it cannot be reached."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id
        )
        connected = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError:
            return False
        client.loop_start()
        if not connected.wait(timeout_s):
            client.loop_stop()
            return False
        self._client = client
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None

    def publish_tick(self) -> int:
        """Publish what is due at the simulator's current time; returns messages published."""
        sim, rt = self.sim, self.sim.runtime
        sent = 0
        for d in sim.devices:
            i = d.index
            if d.runtime != "greengrass":
                continue
            changed = sorted(rt.changed[i])
            rt.changed[i].clear()
            if rt.uplink_down[i] or self._client is None:
                continue
            for message in self._due_status(i, changed):
                self._publish(gg_format.fleet_status_topic(d.id), message)
                sent += 1
            if sim.t - self._last_emit.get(i, -1e18) >= self.emitter_interval_s:
                self._last_emit[i] = sim.t
                topic = self.telemetry_topic.format(thing=d.id)
                self._publish(topic, sim.nucleus_emitter(d.id), qos=0)
                sent += 1
        self.published += sent
        return sent

    def _due_status(self, i: int, changed: list[int]) -> list[dict[str, Any]]:
        sim, rt = self.sim, self.sim.runtime
        device_id = sim.devices[i].id
        out = []
        if i not in self._last_complete:
            self._last_complete[i] = sim.t
            self._last_deployment[i] = int(rt.deployment_status[i])
            return [sim.fleet_status(device_id, "NUCLEUS_LAUNCH")]
        if int(rt.deployment_status[i]) != self._last_deployment[i]:
            self._last_deployment[i] = int(rt.deployment_status[i])
            out.append(sim.fleet_status(device_id, "THING_GROUP_DEPLOYMENT", changed))
        elif changed:
            out.append(sim.fleet_status(device_id, "COMPONENT_STATUS_CHANGE", changed))
        if sim.t - self._last_complete[i] >= self.cadence_s:
            self._last_complete[i] = sim.t
            out.append(sim.fleet_status(device_id, "CADENCE"))
        return out

    def _publish(self, topic: str, payload: Any, qos: int = 1) -> None:
        self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=qos)


class SysfsMirror:
    """Writes each Jetson/Coral device's sysfs tree under ``root/<device>/`` (and tegrastats)."""

    def __init__(self, sim: Simulator, root: Path, *, tegrastats: bool = True) -> None:
        self.sim = sim
        self.writer = SysfsWriter(Path(root))
        self.tegrastats = tegrastats

    @property
    def root(self) -> Path:
        return self.writer.root

    def device_root(self, device_id: str) -> Path:
        return self.writer.device_root(device_id)

    def snapshot(self) -> list[tuple[str, dict[str, str], str | None]]:
        """Every device's files and tegrastats line at the current tick (under the sim lock)."""
        out = []
        with self.sim.lock:
            for d in self.sim.devices:
                line = None
                if self.tegrastats and d.profile.kind == "jetson":
                    line = self.sim.tegrastats_line(d.id)
                out.append((d.id, self.sim.sysfs_files(d.id), line))
        return out

    def write(self, snapshot: list[tuple[str, dict[str, str], str | None]]) -> None:
        for device_id, files, line in snapshot:
            self.writer.write(device_id, files)
            if line is not None:
                with (self.device_root(device_id) / "tegrastats.log").open("a") as fh:
                    fh.write(line + "\n")

    def write_tick(self) -> None:
        """Write the current tick's files (snapshot and write in one go)."""
        self.write(self.snapshot())
