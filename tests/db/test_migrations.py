"""Migrations up and down on real PostgreSQL and on SQLite; the models never drift from them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleetwatch.db import load_models, make_engine, migrations, session_factory, session_scope
from fleetwatch.fleet import service
from fleetwatch.fleet.schemas import DeviceIn


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(state_db_url: str) -> None:
    migrations.upgrade(state_db_url)
    assert migrations.is_current(state_db_url)
    assert set(load_models().tables) <= _tables(state_db_url)
    migrations.downgrade(state_db_url, "base")
    assert _tables(state_db_url) == set()
    assert migrations.current_heads(state_db_url) == set()
    migrations.upgrade(state_db_url)
    assert migrations.is_current(state_db_url)


def test_models_match_migrations(state_db_url: str) -> None:
    migrations.upgrade(state_db_url)
    engine = make_engine(state_db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), load_models())
    finally:
        engine.dispose()
    # Only type-affinity noise is tolerated; a missing table, column or index is drift.
    structural = [d for d in diff if not (isinstance(d, list) or d[0].startswith("modify_"))]
    assert structural == [], structural


def test_fleet_service_on_migrated_db(state_db_url: str) -> None:
    migrations.upgrade(state_db_url)
    factory = session_factory(make_engine(state_db_url))
    with session_scope(factory) as db:
        service.upsert_device(
            db=db,
            device=DeviceIn(
                id="orin-1", site_id="berlin", hardware_model="jetson-agx-orin", firmware="jp6"
            ),
        )
        service.upsert_device(
            db=db,
            device=DeviceIn(
                id="orin-2", site_id="berlin", hardware_model="jetson-agx-orin", firmware="jp6"
            ),
        )
        service.upsert_device(
            db=db, device=DeviceIn(id="gw-1", site_id="oslo", hardware_model="x86-gateway")
        )
    with session_scope(factory) as db:
        rows, total = service.list_devices(db=db, site="berlin", limit=1)
        assert total == 2 and [r.id for r in rows] == ["orin-1"]
        device = service.get(db=db, device_id="orin-2")
        assert device is not None and device.cohort == "jetson-agx-orin/jp6/berlin"
        assert device.registered_at.tzinfo is not None
        seen = datetime(2026, 12, 1, tzinfo=UTC)
        assert service.mark_seen(db=db, seen={"orin-2": seen, "ghost": seen}) == 1
    with session_scope(factory) as db:
        assert service.get(db=db, device_id="orin-2").last_seen_at == seen  # type: ignore[union-attr]
        assert [s.id for s in service.list_sites(db=db)] == ["berlin", "oslo"]
