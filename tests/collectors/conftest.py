"""Helpers for the collector tests: fixture paths, sample lookup, a real loopback HTTP server."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fleetwatch.plugins import Sample

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples called ``name`` whose labels include ``labels``."""
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def one(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the single sample that matches; fails when there are none or several."""
    found = find(samples, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples: {found[:3]}"
    return found[0].value


def plain(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in ("device", "site")}


@pytest.fixture
def jetson_root(tmp_path: Path) -> Path:
    """A writable copy of the Jetson sysfs fixture."""
    return Path(shutil.copytree(FIXTURES / "jetson_sysfs", tmp_path / "sys"))


@pytest.fixture
def coral_root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "coral_sysfs", tmp_path / "sys"))


class Served:
    """What the loopback server answers: path -> (status, content type, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""

    def route(
        self,
        path: str,
        body: str | bytes,
        status: int = 200,
        content_type: str = "text/plain; version=0.0.4; charset=utf-8",
    ) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, content_type, data)
        return self.url + path


@pytest.fixture
def http_server() -> Iterator[Served]:
    """A real HTTP server on 127.0.0.1 (an ephemeral port), stopped after the test."""
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append((self.path, dict(self.headers.items())))
            status, content_type, body = served.routes.get(
                self.path, (404, "text/plain", b"not found")
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
