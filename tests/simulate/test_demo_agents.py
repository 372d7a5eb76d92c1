"""``fleetwatch demo --via-agents``: the fleet's telemetry reaches the store through gateway
agents and the ingest API, every sample of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetwatch.demo import DERIVED_MEASUREMENTS, DemoOptions, run_demo
from fleetwatch.settings import load_settings
from fleetwatch.store import open_store
from fleetwatch.store.influxd_process import free_port


@pytest.mark.slow
def test_every_sample_ships_through_the_agents(tmp_path: Path) -> None:
    options = DemoOptions(
        devices=12, sites=2, faults=1, speed=600.0, duration_s=8.0, dashboard=False,
        via_agents=True, mqtt_port=free_port(),
    )  # fmt: skip
    settings = load_settings(data_dir=tmp_path / "data")
    report = run_demo(options, settings)
    with open_store(settings) as store:
        telemetry = store.count() - sum(store.count(m) for m in DERIVED_MEASUREMENTS)
    assert report["samples_generated"] > 0
    assert telemetry == report["samples_generated"] == report["samples_stored"]
    agents = report["agents"]
    assert set(agents) == {site.name for site in _sites(report)}
    sent = sum(a["samples_sent"] for a in agents.values())
    assert sent >= report["samples_generated"]  # at least once; re-sends are idempotent
    assert all(sum(lane["samples"] for lane in a["buffer"].values()) == 0 for a in agents.values())
    assert all(a["bytes_sent"] > 0 for a in agents.values())


def _sites(report: dict[str, object]) -> list[object]:
    from fleetwatch.simulate.inventory import build_sites

    per_site = report["devices"]["per_site"]  # type: ignore[index]
    return [s for s in build_sites(len(per_site)) if s.name in per_site]
