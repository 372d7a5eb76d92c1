"""InfluxDB-specific behaviour: schema creation, retries, 4xx messages, v2 wire format."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from fleetwatch.store import StoreError, StoreUnavailable, open_store
from fleetwatch.store.influx import parse_series_key
from fleetwatch.store.influxd_process import InfluxdProcess, free_port
from fleetwatch.telemetry import Sample, now_ms
from tests.conftest import influx_settings

T0 = now_ms() - 3_600_000


def sample(i: int, device: str = "d1") -> Sample:
    return Sample(
        "power_watts", {"device": device, "site": "s1", "rail": "VDD_IN"}, 1.5 + i, T0 + i
    )


def test_creates_database_and_retention_policy(influxd: InfluxdProcess, tmp_path: Path) -> None:
    settings = influx_settings(influxd, tmp_path, influx_retention="7d")
    with open_store(settings):
        pass
    db = settings.store.influx_database
    body = httpx.get(
        f"{influxd.url}/query", params={"q": f'SHOW RETENTION POLICIES ON "{db}"'}
    ).json()
    rows = body["results"][0]["series"][0]["values"]
    raw = [r for r in rows if r[0] == "raw"]
    assert raw and raw[0][1] == "168h0m0s" and raw[0][-1] is True  # default policy
    # Opening again with a new retention alters the policy instead of failing.
    with open_store(
        settings.model_copy(
            update={"store": settings.store.model_copy(update={"influx_retention": "30d"})}
        )
    ):
        pass
    body = httpx.get(
        f"{influxd.url}/query", params={"q": f'SHOW RETENTION POLICIES ON "{db}"'}
    ).json()
    assert [r[1] for r in body["results"][0]["series"][0]["values"] if r[0] == "raw"] == [
        "720h0m0s"
    ]


def test_unreachable_influx_fails_retryably_and_reports_nothing_written(tmp_path: Path) -> None:
    proc = InfluxdProcess(root=tmp_path / "influx")
    proc.start()
    settings = influx_settings(proc, tmp_path, max_retries=2, retry_backoff_s=0.01)
    store = open_store(settings)
    proc.stop()
    with pytest.raises(StoreUnavailable, match="after 3 attempts"):
        store.write([sample(0)])
    proc.start()  # same data dir and port: the store works again without being reopened
    result = store.write([sample(1)])
    assert result.written == 1
    assert store.count() == 1  # the failed write was not half-written
    store.close()
    proc.cleanup()


class _Recorder(BaseHTTPRequestHandler):
    """A loopback HTTP server answering writes with a scripted sequence of statuses."""

    statuses: list[int] = []
    bodies: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if self.path.startswith("/query"):  # schema statements: acknowledge, as influxd does
            self._json(b'{"results":[{"statement_id":0}]}')
            return
        type(self).bodies.append((self.path, dict(self.headers), body))
        status = type(self).statuses.pop(0) if type(self).statuses else 204
        payload = b'{"error":"field type conflict: input field \\"value\\" is type string"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(0 if status == 204 else len(payload)))
        self.end_headers()
        if status != 204:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path.startswith("/query"):
            self._json(b'{"results":[{"statement_id":0}]}')
            return
        self._json(
            b'{"buckets":[{"id":"b1","name":"fleetwatch","orgID":"o1","retentionRules":[]}]}'
        )

    def _json(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.statuses = []
    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_5xx_is_retried_then_succeeds(recorder: str, tmp_path: Path) -> None:
    from fleetwatch.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path,
        store={
            "backend": "influxdb",
            "influx_url": recorder,
            "max_retries": 3,
            "retry_backoff_s": 0.01,
        },
    )
    _Recorder.statuses = [503, 500, 204]
    store = open_store(settings)
    assert store.write([sample(0), sample(1)]).written == 2
    writes = _Recorder.bodies
    assert len(writes) == 3  # two failures, one success
    path, headers, body = writes[-1]
    assert "precision=ms" in path and "db=" in path
    assert headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(body).decode().splitlines()
    assert lines[0] == f"power_watts,device=d1,rail=VDD_IN,site=s1 value=1.5 {T0}"


def test_4xx_surfaces_the_server_message_and_is_not_retried(recorder: str, tmp_path: Path) -> None:
    from fleetwatch.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path,
        store={
            "backend": "influxdb",
            "influx_url": recorder,
            "max_retries": 3,
            "retry_backoff_s": 0.01,
        },
    )
    _Recorder.statuses = [400]
    store = open_store(settings)
    before = len(_Recorder.bodies)
    with pytest.raises(StoreError, match="field type conflict") as info:
        store.write([sample(0)])
    assert not isinstance(info.value, StoreUnavailable)
    assert len(_Recorder.bodies) - before == 1


def test_v2_writes_go_to_api_v2_write_with_token_and_ms_precision(
    recorder: str, tmp_path: Path
) -> None:
    from fleetwatch.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path,
        store={
            "backend": "influxdb",
            "influx_url": recorder,
            "influx_api": "v2",
            "influx_token": "s3cret",
            "influx_bucket": "fleetwatch",
            "influx_org": "ops",
        },
    )
    store = open_store(settings)
    assert store.write([sample(0), sample(1)]).written == 2
    path, headers, body = _Recorder.bodies[-1]
    assert path.startswith("/api/v2/write")
    assert "bucket=fleetwatch" in path and "org=ops" in path and "precision=ms" in path
    assert headers["Authorization"] == "Token s3cret"
    text = (
        gzip.decompress(body).decode()
        if headers.get("Content-Encoding") == "gzip"
        else body.decode()
    )
    assert text.splitlines()[1] == f"power_watts,device=d1,rail=VDD_IN,site=s1 value=2.5 {T0 + 1}"


def test_parse_series_key_unescapes() -> None:
    assert parse_series_key(r"m,device=a\,b\ c\=d,site=s") == (
        "m",
        {"device": "a,b c=d", "site": "s"},
    )
