"""The demo's API and dashboard, served from threads of the demo process on loopback.

The API runs in ``--insecure-local`` mode (every scope, no token), which the app refuses on
anything but a loopback address. When the usual ports are taken, free ones are used and the
summary says where.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from fleetwatch.demo import DemoRun, Stage

API_PORT = 8000
DASHBOARD_PORT = 8050


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port


class ServeStage(Stage):
    """Serves the REST API (always) and the dashboard (unless ``--no-dashboard``)."""

    name = "serve"

    def __init__(self, dashboard: bool = True) -> None:
        self.dashboard = dashboard
        self.api_server: Any = None
        self.api_thread: threading.Thread | None = None
        self.dash: Any = None
        self.urls: dict[str, str] = {}
        self.api_base = ""

    def start(self, run: DemoRun) -> None:
        import uvicorn

        from fleetwatch.api.app import create_app

        port = _port(API_PORT)
        app = create_app(run.settings, insecure_local=True)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.api_server = uvicorn.Server(config)
        self.api_thread = threading.Thread(target=self.api_server.run, name="demo-api", daemon=True)
        self.api_thread.start()
        deadline = time.monotonic() + 20
        while not self.api_server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.api_base = f"http://127.0.0.1:{port}"
        self.urls["api"] = f"{self.api_base}/api/v1 (docs: /docs; no token needed)"
        if self.dashboard:
            from dashboards.server import DashboardServer

            dash_port = _port(DASHBOARD_PORT)
            self.dash = DashboardServer(f"http://127.0.0.1:{port}", None, port=dash_port).start()
            self.urls["dashboard"] = self.dash.url
        run.info["serve"] = " | ".join(f"{k}: {v}" for k, v in self.urls.items())

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {"served": dict(self.urls)}

    def stop(self, run: DemoRun) -> None:
        if self.dash is not None:
            self.dash.stop()
        if self.api_server is not None:
            self.api_server.should_exit = True
            if self.api_thread is not None:
                self.api_thread.join(10)
