"""Score the analysis against the simulator's ground truth (``fleetwatch evaluate``).

Each seed simulates a fleet for some hours with one fault of every failing kind injected at a
random time on a random eligible device, runs the real pipeline on embedded defaults (samples
into the SQLite store, the analysis cycle every few simulated minutes) and compares what the
analysis flagged with what really happened:

* a device is *flagged* while its health status is ``warning`` or ``critical``; a run of
  flagged cycles is one alert episode;
* a fault is *detected* when its device is flagged after the fault began and, for faults that
  end in failure, no later than the moment the failure threshold is crossed; the lead time is
  the time from the first flag to that crossing;
* precision is the share of alert episodes that belong to a faulty device while its fault is
  active; false anomaly episodes are anomaly episodes on devices without a fault, per
  device-day.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from fleetwatch.analysis import service
from fleetwatch.analysis.models import AnomalyEpisode, DeviceHealth
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.demo import register_inventory
from fleetwatch.settings import load_settings
from fleetwatch.simulate import FaultSpec, SimConfig, Simulator
from fleetwatch.simulate.faults import eligible
from fleetwatch.store import open_store

FAILING_KINDS = ("fan_failure", "dust", "disk_fill", "memory_leak", "degradation")
STATE_KINDS = ("crash_loop", "failed_deployment")
FLAGGED = ("warning", "critical")
THERMAL_KINDS = ("fan_failure", "dust")  # the runaways towards a trip point


@dataclass(frozen=True)
class EvaluationConfig:
    seeds: tuple[int, ...] = (1, 2, 3)
    devices: int = 60
    sites: int = 3
    hours: float = 8.0
    cycle_minutes: float | None = None  # None: the beat period of the settings (1 min)
    write_every_ticks: int = 3
    kinds: tuple[str, ...] = FAILING_KINDS + STATE_KINDS


@dataclass
class FaultOutcome:
    seed: int
    kind: str
    device: str
    start: float
    crossed_at: float | None
    first_flag: float | None = None

    @property
    def detected(self) -> bool:
        """Failing kinds: flagged no later than the crossing. State kinds (a crash loop, a
        failed deployment) cannot be foreseen: flagged within 15 minutes of the break."""
        if self.first_flag is None:
            return False
        if self.crossed_at is None:
            return True
        if self.kind in STATE_KINDS:
            return self.first_flag <= self.crossed_at + 900
        return self.first_flag <= self.crossed_at

    @property
    def lead_s(self) -> float | None:
        if not self.detected or self.crossed_at is None or self.first_flag is None:
            return None
        if self.kind in STATE_KINDS:
            return None
        return self.crossed_at - self.first_flag


@dataclass
class SeedResult:
    outcomes: list[FaultOutcome] = field(default_factory=list)
    episodes_true: int = 0
    episodes_false: int = 0
    false_anomaly_episodes: int = 0
    # False anomaly episodes by "metric (kind)": which series make the noise an operator sees.
    false_by_series: Counter[str] = field(default_factory=Counter)
    clean_device_days: float = 0.0
    seconds: float = 0.0
    false_alerts: list[dict[str, Any]] = field(default_factory=list)


def _inject(sim: Simulator, kinds: tuple[str, ...], seed: int) -> list[FaultOutcome]:
    rng = np.random.default_rng([seed, 99])
    used: set[str] = set()
    outcomes = []
    for kind in kinds:
        candidates = [d for d in sim.devices if d.id not in used and eligible(kind, d)]
        if not candidates:
            continue
        device = candidates[int(rng.integers(len(candidates)))]
        used.add(device.id)
        start = sim.t + float(rng.uniform(1.0, 2.5)) * 3600
        sim.inject(
            FaultSpec(
                kind, device.id, start=round(start / 10) * 10, severity=float(rng.uniform(0.5, 1.0))
            )
        )
        outcomes.append(FaultOutcome(seed, kind, device.id, start, None))
    return outcomes


def run_seed(seed: int, config: EvaluationConfig, workdir: Path) -> SeedResult:
    started = time.perf_counter()
    settings = load_settings(data_dir=workdir, analysis={"shards": 1})
    migrations.upgrade(settings.database_url)
    sessions = session_factory(make_engine(settings.database_url))
    store = open_store(settings)
    sim = Simulator(SimConfig(devices=config.devices, sites=config.sites, seed=seed))
    register_inventory(settings, sim)
    outcomes = _inject(sim, config.kinds, seed)
    t_begin = sim.t
    ticks = int(config.hours * 3600 / sim.config.step_s)
    cycle_s = (
        settings.celery.analysis_interval_s
        if config.cycle_minutes is None
        else config.cycle_minutes * 60
    )
    cycle_ticks = max(1, round(cycle_s / sim.config.step_s))
    flags: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    reasons: dict[tuple[str, float], str] = {}
    for tick in range(1, ticks + 1):
        sim.step(1)
        if tick % config.write_every_ticks == 0:
            store.write(sim.samples())
        if tick % cycle_ticks == 0:
            now_ms = int(sim.t * 1000)
            with session_scope(sessions) as db:
                service.run_shard(
                    db=db,
                    store=store,
                    settings=settings.analysis,
                    shard=0,
                    n_shards=1,
                    cycle_id=str(now_ms),
                    now_ms=now_ms,
                )
            with session_scope(sessions) as db:
                for row in db.scalars(select(DeviceHealth)):
                    flagged = row.status in FLAGGED
                    flags[row.device_id].append((sim.t, flagged))
                    if flagged and row.top_signals:
                        top = row.top_signals[0]
                        reasons[(row.device_id, sim.t)] = top.get("detail") or top["signal"]
    truth = {(g.kind, g.device): g for g in sim.ground_truth()}
    result = SeedResult(outcomes=outcomes)
    faulty = {o.device: o for o in outcomes}
    fault_end: dict[str, float] = {}
    for o in outcomes:
        o.crossed_at = truth[(o.kind, o.device)].crossed_at
        fault_end[o.device] = truth[(o.kind, o.device)].end or sim.t
        o.first_flag = next((t for t, on in flags[o.device] if on and t >= o.start), None)
    end = sim.t
    for device, timeline in flags.items():
        for episode_start in _episode_starts(timeline):
            fault = faulty.get(device)
            # A fault stays true while it lasts (dust does not clear itself), plus an hour.
            if fault and fault.start <= episode_start <= fault_end[device] + 3600:
                result.episodes_true += 1
            else:
                result.episodes_false += 1
                result.false_alerts.append(
                    {
                        "device": device,
                        "minute": round((episode_start - t_begin) / 60),
                        "reason": reasons.get((device, episode_start), ""),
                    }
                )
    with session_scope(sessions) as db:
        episodes = db.scalars(select(AnomalyEpisode)).all()
        false = [e for e in episodes if e.device_id not in faulty]
        result.false_anomaly_episodes = len(false)
        result.false_by_series = Counter(f"{e.metric} ({e.kind})" for e in false)
    clean = len(sim.devices) - len(faulty)
    result.clean_device_days = clean * (end - t_begin) / 86400
    result.seconds = time.perf_counter() - started
    store.close()
    return result


MERGE_GAP_S = 1800.0


def _episode_starts(timeline: list[tuple[float, bool]]) -> list[float]:
    """Starts of alert episodes: flagged runs, with gaps under 30 min merged (the ``for`` and
    flap handling of the alerting layer keep those one alert)."""
    starts: list[float] = []
    last_on: float | None = None
    for t, on in timeline:
        if not on:
            continue
        if last_on is None or t - last_on > MERGE_GAP_S:
            starts.append(t)
        last_on = t
    return starts


def evaluate(
    config: EvaluationConfig, workdir: Path | None = None, *, jobs: int = 1
) -> dict[str, Any]:
    """Run every seed (``jobs`` at a time, in separate processes) and summarise per fault kind
    and overall."""
    with tempfile.TemporaryDirectory() as tmp:
        root = workdir or Path(tmp)
        dirs = [root / f"seed-{seed}" for seed in config.seeds]
        if jobs <= 1 or len(config.seeds) <= 1:
            results = [
                run_seed(seed, config, d) for seed, d in zip(config.seeds, dirs, strict=True)
            ]
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(run_seed, config.seeds, [config] * len(dirs), dirs))
    outcomes = [o for r in results for o in r.outcomes]
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in config.kinds:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        leads = [o.lead_s for o in mine if o.lead_s is not None]
        per_kind[kind] = {
            "faults": len(mine),
            "crossed": sum(o.crossed_at is not None for o in mine),
            "detected": sum(o.detected for o in mine),
            "recall": round(sum(o.detected for o in mine) / len(mine), 3),
            "median_lead_minutes": round(statistics.median(leads) / 60, 1) if leads else None,
        }
    thermal = [o.lead_s for o in outcomes if o.kind in THERMAL_KINDS and o.lead_s is not None]
    failing = [o for o in outcomes if o.kind in FAILING_KINDS and o.crossed_at is not None]
    true_eps = sum(r.episodes_true for r in results)
    false_eps = sum(r.episodes_false for r in results)
    device_days = sum(r.clean_device_days for r in results)
    return {
        "seeds": list(config.seeds),
        "devices": config.devices,
        "hours": config.hours,
        "per_kind": per_kind,
        "cycle_minutes": config.cycle_minutes,
        "thermal_runaway_median_lead_minutes": round(statistics.median(thermal) / 60, 1)
        if thermal
        else None,
        "recall_failing": round(sum(o.detected for o in failing) / len(failing), 3)
        if failing
        else None,
        "alert_precision": round(true_eps / (true_eps + false_eps), 3)
        if true_eps + false_eps
        else None,
        "alert_episodes": true_eps + false_eps,
        "false_anomaly_episodes_per_device_day": round(
            sum(r.false_anomaly_episodes for r in results) / device_days, 3
        )
        if device_days
        else None,
        "false_anomaly_episodes_per_device_day_by_series": {
            name: round(count / device_days, 3)
            for name, count in sum((r.false_by_series for r in results), Counter()).most_common()
        }
        if device_days
        else {},
        "seconds": round(sum(r.seconds for r in results), 1),
        "false_alerts": [a for r in results for a in r.false_alerts],
        "faults": [
            {
                "seed": o.seed,
                "kind": o.kind,
                "device": o.device,
                "detected": o.detected,
                "lead_minutes": None if o.lead_s is None else round(o.lead_s / 60, 1),
                "crossed": o.crossed_at is not None,
            }
            for o in outcomes
        ],
    }
