"""Serving the dashboard: in the foreground (``fleetwatch dashboard``) or in a thread of another
process (``fleetwatch demo``, tests).

In-process use::

    from dashboards.server import DashboardServer

    server = DashboardServer(api_url, token, host="127.0.0.1", port=8050).start()
    ...  # server.url is the dashboard's address
    server.stop()
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import make_server

from dashboards.app import create_dash_app


class DashboardServer:
    """The Dash app on a threaded WSGI server; ``port=0`` picks a free port."""

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8050,
        refresh_s: float = 10.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.app = create_dash_app(api_url, token, refresh_s=refresh_s, timeout_s=timeout_s)
        self._server: Any = make_server(host, port, self.app.server, threaded=True)
        self.host = host
        self.port = int(self._server.server_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self.close()

    def start(self) -> DashboardServer:
        """Serve in a daemon thread and return at once."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fleetwatch-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self.close()

    def close(self) -> None:
        self._server.server_close()
        self.app.fleetwatch_client.close()  # type: ignore[attr-defined]
