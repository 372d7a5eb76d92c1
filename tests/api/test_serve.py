"""``fleetwatch api`` serves the app over real HTTP on loopback (uvicorn in a subprocess)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from benchmarks.api import api_server
from fleetwatch.api import service
from fleetwatch.db import make_engine, migrations, session_factory, session_scope


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_fleetwatch_api_serves_ingest_and_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    with session_scope(session_factory(engine)) as db:
        _, token = service.create_token(db=db, name="t", scopes=["ingest", "read"])
    engine.dispose()
    port = _free_port()
    config = tmp_path / "fleetwatch.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[db]\nurl = "{url}"\n[celery]\nembedded = true\n'
        f"[api]\nport = {port}\n"
    )
    headers = {"Authorization": f"Bearer {token}"}
    with api_server(config, port) as base:
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        written = httpx.post(
            f"{base}/api/v1/ingest", content=b"m,device=d,site=s value=3 1000\n", headers=headers
        )
        assert written.json()["accepted"] == 1
        series = httpx.get(f"{base}/api/v1/metrics/series", headers=headers).json()
        assert series["items"] == [{"metric": "m", "labels": {"device": "d", "site": "s"}}]
        assert httpx.get(f"{base}/api/v1/metrics/series").status_code == 401
