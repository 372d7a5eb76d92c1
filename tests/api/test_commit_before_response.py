"""A write is committed before its response is sent, over real HTTP (uvicorn on loopback).

FastAPI runs the code after ``yield`` in a dependency once the response has gone out, unless the
dependency is declared with ``scope="function"``. With the default, a client that reads right
after a write can miss it, and a commit that fails comes after a 2xx. Here every commit is made
slow on purpose (a real commit, delayed in SQLAlchemy's ``before_commit`` hook) so the order is
visible: when the response arrives, the row must already be readable from another connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from fleetwatch.alerting.models import Silence
from fleetwatch.api import service
from fleetwatch.api.app import create_app
from fleetwatch.api.deps import get_db
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.settings import load_settings
from fleetwatch.store.sqlite import SQLiteStore
from tests.servers import serve_in_thread

COMMIT_DELAY_S = 0.5


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    migrations.upgrade(url)
    settings = load_settings(data_dir=tmp_path, db={"url": url}, celery={"embedded": True})
    engine = make_engine(url)
    factory = session_factory(engine)
    with session_scope(factory) as db:
        _, token = service.create_token(db=db, name="ops", scopes=["alerts", "read"])

    def slow_commit(session: Session) -> None:
        time.sleep(COMMIT_DELAY_S)

    event.listen(factory, "before_commit", slow_commit)
    store = SQLiteStore(tmp_path / "metrics.sqlite3")
    app = create_app(settings, store=store, session_factory=factory)
    try:
        with serve_in_thread(app) as base:
            yield base, token, tmp_path / "state.sqlite3"
    finally:
        store.close()
        engine.dispose()


def test_a_created_silence_is_committed_when_its_response_arrives(
    served: tuple[str, str, Path],
) -> None:
    base, token, path = served
    body = {"matchers": [{"name": "device", "value": "jetson-7"}], "duration_s": 3600}
    response = httpx.post(
        f"{base}/api/v1/silences",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    # Read through a connection of our own, not the server's session.
    reader = make_engine(f"sqlite:///{path}")
    try:
        with Session(reader) as db:
            stored = db.scalar(
                select(func.count()).select_from(Silence).where(Silence.id == response.json()["id"])
            )
    finally:
        reader.dispose()
    assert stored == 1


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (kept as wrappers by newer FastAPI)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None) or getattr(route, "app", None)
        if included is not None and hasattr(included, "routes"):
            yield from _api_routes(list(included.routes))


def test_every_route_with_a_state_session_commits_before_responding(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, celery={"embedded": True}))
    with_session, unscoped = set(), set()
    for route in _api_routes(list(app.routes)):
        stack = list(route.dependant.dependencies)
        while stack:
            dependency = stack.pop()
            stack.extend(dependency.dependencies)
            if dependency.call is get_db:
                with_session.add(route.path)
                if dependency.scope != "function":
                    unscoped.add(route.path)
    assert len(with_session) >= 30, sorted(with_session)  # the walk found the routers
    assert not unscoped, sorted(unscoped)
