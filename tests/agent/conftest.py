"""Fixtures of the agent tests: a local HTTP receiver, a fault-injecting TCP proxy, spool files,
and an influxd of their own (the fault test stops and restarts it, so it is not the session's)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from fleetwatch.agent import codec
from fleetwatch.store.influxd_process import InfluxdProcess
from fleetwatch.telemetry import Sample

REPO = Path(__file__).resolve().parents[2]
FLEETWATCH_BIN = Path(sys.executable).with_name("fleetwatch")


@dataclass
class Arrival:
    """One request the receiver got: when, how many bytes (request line + headers + body)."""

    at: float
    wire_bytes: int
    samples: list[Sample]
    path: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """A local HTTP server that accepts dense or line-protocol writes and timestamps arrivals.

    ``statuses`` is a queue of statuses to answer before answering 204."""

    server: ThreadingHTTPServer
    arrivals: list[Arrival] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    answer: bytes = b""  # body of a 2xx answer (a partial acceptance, say); empty means 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def samples(self) -> list[Sample]:
        with self.lock:
            return [s for a in self.arrivals for s in a.samples]


def _parse_line_protocol(text: str) -> list[Sample]:
    """Enough of line protocol to read back fleetwatch.lineprotocol.encode output in tests."""
    out = []
    for line in text.splitlines():
        head, value, ts = line.rsplit(" ", 2)
        name, *pairs = head.split(",")
        labels = dict(p.split("=", 1) for p in pairs)
        out.append(Sample(name, labels, float(value.removeprefix("value=")), int(ts)))
    return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            rec = holder["r"]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            head_bytes = len(self.requestline) + 2 + len(str(self.headers)) + 2
            with rec.lock:
                status = rec.statuses.pop(0) if rec.statuses else 204
            if status == 204:
                if self.headers.get("Content-Type") == codec.CONTENT_TYPE:
                    samples = codec.decode(body)
                else:
                    samples = _parse_line_protocol(gzip.decompress(body).decode())
                with rec.lock:
                    rec.arrivals.append(
                        Arrival(
                            time.monotonic(),
                            head_bytes + len(body),
                            samples,
                            self.path,
                            dict(self.headers.items()),
                        )
                    )
            reply = b'{"error":"test says no"}'
            if status == 204 and rec.answer:
                status, reply = 200, rec.answer
            elif status == 204:
                reply = b""
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "7")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    server.shutdown()
    server.server_close()


class TcpProxy:
    """A loopback TCP proxy whose mode the test switches while traffic flows.

    pass: forward both ways; refuse: no listener (connection refused); cut_request: forward part
    of the request, then reset both sides; drop_response: forward the request, then cut before
    the answer reaches the client (the write happened but the client never hears it); stall:
    accept and forward nothing until the mode changes."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.port = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0
        self.faults: Counter[str] = Counter()  # what the proxy actually did, per mode
        self._listen()

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            if mode == "refuse" and self._listener is not None:
                # shutdown() wakes the thread blocked in accept() and stops the listening
                # (close() alone would leave the kernel socket accepting).
                self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            elif mode != "refuse" and self._listener is None:
                self._listen()
            self.mode = mode

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:
            client.close()
            return
        pumps = [
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True),
        ]
        for p in pumps:
            p.start()

    def _pump(self, src: socket.socket, dst: socket.socket, request: bool) -> None:
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if self.mode == "stall":
                    self.faults["stall"] += 1
                while self.mode == "stall" and not self._stop.is_set():
                    time.sleep(0.05)
                if request and self.mode == "cut_request":
                    dst.sendall(chunk[: len(chunk) // 2])
                    self.faults["cut_request"] += 1
                    break
                if not request and self.mode == "drop_response":
                    self.faults["drop_response"] += 1
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.set_mode("refuse")


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


def write_spool(directory: Path, name: str, samples: Iterable[Sample]) -> None:
    """Write a spool file the way a local program should: to .tmp, then rename."""
    tmp = directory / f"{name}.jsonl.tmp"
    with tmp.open("w") as fh:
        for s in samples:
            obj = {"name": s.name, "labels": dict(s.labels), "value": s.value}
            obj["timestamp_ms"] = s.timestamp_ms
            fh.write(json.dumps(obj) + "\n")
    os.replace(tmp, directory / f"{name}.jsonl")


@pytest.fixture(scope="module")
def own_influxd() -> Iterator[InfluxdProcess]:
    proc = InfluxdProcess()
    proc.start()
    yield proc
    proc.cleanup()


def influx_query(url: str, db: str, q: str) -> list[dict[str, object]]:
    """Run InfluxQL; return the series of the first statement (empty list when none)."""
    resp = httpx.post(f"{url}/query", params={"db": db, "q": q, "epoch": "ms"}, timeout=60)
    resp.raise_for_status()
    result = resp.json()["results"][0]
    if "error" in result:
        raise AssertionError(result["error"])
    series: list[dict[str, object]] = result.get("series", [])
    return series


def create_database(url: str, db: str) -> None:
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}, timeout=30)


def stored_points(url: str, db: str) -> list[tuple[str, tuple[tuple[str, str], ...], int, float]]:
    """Every point of a database as (measurement, tags, time ms, value), tags sorted."""
    out = []
    for series in influx_query(url, db, "SELECT value FROM /.*/ GROUP BY *"):
        tags = tuple(sorted((k, v) for k, v in (series.get("tags") or {}).items() if v))
        for ts, value in series["values"]:  # type: ignore[union-attr]
            out.append((str(series["name"]), tags, int(ts), float(value)))
    return out


def as_points(
    samples: Iterable[Sample],
) -> list[tuple[str, tuple[tuple[str, str], ...], int, float]]:
    return [(s.name, tuple(sorted(s.labels.items())), s.timestamp_ms, s.value) for s in samples]
