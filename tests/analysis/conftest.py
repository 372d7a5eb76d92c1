"""A small simulated fleet flowing into embedded stores, analysed cycle by cycle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fleetwatch.analysis import service
from fleetwatch.analysis.models import AnalysisRun, AnomalyEpisode
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.demo import register_inventory
from fleetwatch.settings import Settings, load_settings
from fleetwatch.simulate import FaultSpec, SimConfig, Simulator
from fleetwatch.store import MetricsStore, open_store


@dataclass
class Pipeline:
    sim: Simulator
    settings: Settings
    store: MetricsStore
    sessions: sessionmaker[Session]

    def run(self, minutes: float, cycle_minutes: float = 5.0) -> list[service.ShardSummary]:
        """Advance the fleet, storing every third tick, and run a cycle every few minutes."""
        summaries = []
        ticks = int(minutes * 60 / self.sim.config.step_s)
        per_cycle = int(cycle_minutes * 60 / self.sim.config.step_s)
        for tick in range(1, ticks + 1):
            self.sim.step(1)
            if tick % 3 == 0:
                self.store.write(self.sim.samples())
            if tick % per_cycle == 0:
                summaries.extend(self.cycle())
        return summaries

    def cycle(self, cycle_id: str | None = None) -> list[service.ShardSummary]:
        now_ms = int(self.sim.t * 1000)
        shards = self.settings.analysis.shards
        out = []
        for shard in range(shards):
            with session_scope(self.sessions) as db:
                out.append(
                    service.run_shard(
                        db=db,
                        store=self.store,
                        settings=self.settings.analysis,
                        shard=shard,
                        n_shards=shards,
                        cycle_id=cycle_id or str(now_ms),
                        now_ms=now_ms,
                    )
                )
        return out

    def count(self, model: type) -> int:
        with self.sessions() as db:
            return int(db.scalar(select(func.count()).select_from(model)) or 0)


def build_pipeline(tmp: Path, *, devices: int = 16, seed: int = 5, shards: int = 2) -> Pipeline:
    settings = load_settings(data_dir=tmp, analysis={"shards": shards})
    migrations.upgrade(settings.database_url)
    sessions = session_factory(make_engine(settings.database_url))
    sim = Simulator(SimConfig(devices=devices, sites=2, seed=seed))
    register_inventory(settings, sim)
    return Pipeline(sim, settings, open_store(settings), sessions)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    service._STATE_CACHE.clear()
    service._LIMITS_CACHE.clear()
    service._GRID_LAYOUTS.clear()
    p = build_pipeline(tmp_path)
    yield p
    p.store.close()


def jetson(sim: Simulator) -> str:
    return next(d.id for d in sim.devices if d.profile.kind == "jetson")


def inject_fan_failure(p: Pipeline, after_s: float = 1800, severity: float = 0.8) -> str:
    device = jetson(p.sim)
    p.sim.inject(FaultSpec("fan_failure", device, start=p.sim.t + after_s, severity=severity))
    return device


__all__ = ["AnalysisRun", "AnomalyEpisode", "Pipeline", "build_pipeline", "inject_fan_failure"]
