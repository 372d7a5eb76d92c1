"""The agent's dense uplink against fleetwatch's real ingest API (uvicorn on loopback)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.runner import Agent
from fleetwatch.agent.workload import GatewayWorkload
from tests.servers import serve_in_thread


@pytest.fixture
def ingest_api(tmp_path: Path) -> Iterator[tuple[str, str, object]]:
    """(base URL, ingest token, metrics store) of a running API on SQLite."""
    from fleetwatch.api import service
    from fleetwatch.api.app import create_app
    from fleetwatch.db import make_engine, migrations, session_factory, session_scope
    from fleetwatch.settings import load_settings
    from fleetwatch.store.sqlite import SQLiteStore

    db_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    migrations.upgrade(db_url)
    settings = load_settings(data_dir=tmp_path, db={"url": db_url}, celery={"embedded": True})
    engine = make_engine(db_url)
    factory = session_factory(engine)
    store = SQLiteStore(tmp_path / "metrics.sqlite3")
    with session_scope(factory) as db:
        _, token = service.create_token(db=db, name="gateway", scopes=("ingest",), site=None)
    app = create_app(settings, store=store, session_factory=factory)
    with serve_in_thread(app) as base:
        yield base, token, store
    store.close()
    engine.dispose()


def test_dense_batches_land_in_the_store_through_the_api(
    ingest_api: tuple[str, str, object], tmp_path: Path
) -> None:
    url, token, store = ingest_api
    conf = AgentSettings(uplink="ingest", uplink_url=url, uplink_token=token)
    agent = Agent(conf, buffer_dir=tmp_path / "buffer")
    samples = [s for tick in GatewayWorkload(3).ticks(5) for s in tick]
    agent.ingest(samples)
    stats = agent.run_once()
    agent.stop()
    assert stats["dropped"] == {} and stats["send_errors"] == {}
    assert stats["samples_sent"] == len(samples)
    for metric, n in Counter(s.name for s in samples).items():
        assert store.count(metric) == n  # type: ignore[attr-defined]


def test_a_wrong_token_is_retried_not_dropped(
    ingest_api: tuple[str, str, object], tmp_path: Path
) -> None:
    url, _, store = ingest_api
    conf = AgentSettings(uplink="ingest", uplink_url=url, uplink_token="fw_not_a_token")
    agent = Agent(conf, buffer_dir=tmp_path / "buffer")
    agent.ingest(GatewayWorkload(1).tick())
    stats = agent.run_once()
    agent.stop()
    assert stats["dropped"] == {} and stats["samples_sent"] == 0
    assert stats["buffer"]["bulk"]["samples"] == 26
    assert set(stats["send_errors"]) == {"http_401"}
    assert store.count() == 0  # type: ignore[attr-defined]
