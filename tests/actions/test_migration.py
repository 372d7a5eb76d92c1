"""The actions branch of the state DB migrates up and down on its own, on both backends."""

from __future__ import annotations

import sqlalchemy as sa

from fleetwatch.db import make_engine, migrations

TABLES = {
    "actions",
    "action_audit",
    "action_pauses",
    "action_device_state",
    "action_site_state",
    "action_policies",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_actions_branch_down_and_up(db_url: str) -> None:
    assert _tables(url=db_url) >= TABLES
    assert "20261204_0005" in migrations.current_heads(db_url)
    migrations.downgrade(db_url, "actions@-1")
    left = _tables(db_url)
    assert not (TABLES & left)
    assert {"devices", "sites"} <= left  # the other domains keep their tables
    migrations.upgrade(db_url)
    assert _tables(db_url) >= TABLES
    assert migrations.is_current(db_url)
