"""Analysis inside ``fleetwatch demo``: the same cycle the Celery workers run, in-process.

Every ``cycle_s`` simulated seconds the stage runs every shard (embedded mode: one code path,
no broker), prints devices whose status changes, and at the end scores what it flagged against
the simulator's ground truth: per fault, detected or not and the lead time before the failure
threshold; false flags per device-day.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from fleetwatch.analysis import service
from fleetwatch.analysis.evaluate import FAILING_KINDS, STATE_KINDS, FaultOutcome
from fleetwatch.analysis.models import DeviceHealth
from fleetwatch.db import make_engine, session_factory, session_scope
from fleetwatch.demo import DemoRun, Stage
from fleetwatch.store import open_store

FLAGGED = ("warning", "critical")


class AnalysisStage(Stage):
    name = "analysis"

    def __init__(self, cycle_s: float = 300.0) -> None:
        self.cycle_s = cycle_s
        self.last_cycle: float | None = None
        self.first_flag: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.cycles = 0
        self.seconds = 0.0
        self.sessions: Any = None
        self.store: Any = None

    def start(self, run: DemoRun) -> None:
        self.engine = make_engine(run.settings.database_url)
        self.sessions = session_factory(self.engine)
        self.store = open_store(run.settings)
        run.info["analysis"] = f"analysis cycle every {self.cycle_s / 60:.0f} simulated minutes"

    def tick(self, run: DemoRun) -> None:
        if self.last_cycle is not None and run.sim.t - self.last_cycle < self.cycle_s:
            return
        self.last_cycle = run.sim.t
        began = time.perf_counter()
        now_ms = int(run.sim.t * 1000)
        shards = run.settings.analysis.shards
        for shard in range(shards):
            with session_scope(self.sessions) as db:
                service.run_shard(
                    db=db,
                    store=self.store,
                    settings=run.settings.analysis,
                    shard=shard,
                    n_shards=shards,
                    cycle_id=str(now_ms),
                    now_ms=now_ms,
                )
        self.cycles += 1
        self.seconds += time.perf_counter() - began
        self._announce(run)

    def _announce(self, run: DemoRun) -> None:
        with self.sessions() as db:
            rows = db.scalars(select(DeviceHealth)).all()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
            before = self.status.get(row.device_id, "ok")
            if row.status != before:
                reason = row.top_signals[0].get("detail") if row.top_signals else None
                verb = "recovered" if row.status == "ok" else row.status.upper()
                run.events.append(f"{row.device_id}: {verb}" + (f" — {reason}" if reason else ""))
            if row.status in FLAGGED and row.device_id not in self.first_flag:
                self.first_flag[row.device_id] = run.sim.t
            self.status[row.device_id] = row.status
        run.info["analysis"] = f"{self.cycles} analysis cycles; health: " + ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items())
        )

    def report(self, run: DemoRun) -> dict[str, Any]:
        outcomes = []
        faulty = set()
        for truth in run.sim.ground_truth():
            faulty.add(truth.device)
            if truth.kind not in FAILING_KINDS + STATE_KINDS:
                continue
            flag = self.first_flag.get(truth.device)
            outcome = FaultOutcome(0, truth.kind, truth.device, truth.start, truth.crossed_at)
            outcome.first_flag = flag if flag is not None and flag >= truth.start else None
            outcomes.append(outcome)
        clean = [d.id for d in run.sim.devices if d.id not in faulty]
        false_flags = [d for d in clean if d in self.first_flag]
        device_days = len(clean) * run.sim.elapsed_s / 86400
        return {
            "detection": {
                "faults": [
                    {
                        "kind": o.kind,
                        "device": o.device,
                        "crossed": o.crossed_at is not None,
                        "detected": o.detected,
                        "lead_minutes": None if o.lead_s is None else round(o.lead_s / 60, 1),
                    }
                    for o in outcomes
                ],
                "flagged_without_fault": false_flags,
                "false_flags_per_device_day": round(len(false_flags) / device_days, 3)
                if device_days
                else None,
                "cycles": self.cycles,
                "analysis_seconds": round(self.seconds, 2),
            },
            "health": dict(sorted(_count(self.status).items())),
        }

    def stop(self, run: DemoRun) -> None:
        if self.store is not None:
            self.store.close()
            self.engine.dispose()


def _count(status: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in status.values():
        out[value] = out.get(value, 0) + 1
    return out
