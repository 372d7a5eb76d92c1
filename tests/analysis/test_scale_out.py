"""Two real Celery worker processes on one real Redis broker share a cycle: each shard once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select

from fleetwatch.analysis.models import AnalysisRun
from fleetwatch.worker import TASK_ROUTES
from tests.analysis.conftest import build_pipeline

pytestmark = [pytest.mark.redis, pytest.mark.slow]
TASK = "fleetwatch.analysis.analyse_shard"


def _worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetwatch.cli.main",
            "worker",
            "-Q",
            "analysis",
            "--concurrency",
            "1",
            "--hostname",
            f"{name}@fleetwatch-test",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_two_workers_split_a_cycle_and_do_each_shard_once(tmp_path: Path) -> None:
    shards = 6
    pipeline = build_pipeline(tmp_path, devices=24, shards=shards)
    pipeline.run(30, cycle_minutes=30)  # data plus a first committed cycle
    pipeline.sim.step(60)
    pipeline.store.write(pipeline.sim.samples())
    broker = f"redis://127.0.0.1:6379/{11 + os.getpid() % 4}"
    queue_prefix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "FLEETWATCH_DATA_DIR": str(tmp_path),
        "FLEETWATCH_CELERY__BROKER_URL": broker,
        "FLEETWATCH_ANALYSIS__SHARDS": str(shards),
        "FLEETWATCH_LOG_LEVEL": "WARNING",
    }
    # A client app of its own: the shared app may already hold connections to another broker
    # from earlier tests, and its settings must not leak into them.
    client = Celery("scale-out-test", broker=broker)
    client.conf.task_routes = TASK_ROUTES
    client.control.purge()
    logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
    workers = [
        _worker(f"w{i}-{queue_prefix}", env, log) for i, log in zip((1, 2), logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 240  # worker start-up is slow on a busy 2-core machine
        replies: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(replies) < 2:
            replies = client.control.ping(timeout=2.0) or []
            replies = [r for r in replies if queue_prefix in next(iter(r))]
        assert len(replies) == 2, "workers did not come up:\n" + "\n".join(
            log.read_text(errors="replace")[-2000:] for log in logs
        )
        now_ms = int(pipeline.sim.t * 1000)
        for i in range(shards):
            client.send_task(TASK, args=(i, shards, "scale-out", now_ms))
        # A duplicate delivery of one shard, as a broker redelivery would produce.
        client.send_task(TASK, args=(0, shards, "scale-out", now_ms))
        deadline = time.monotonic() + 180
        runs: list[AnalysisRun] = []
        while time.monotonic() < deadline:
            with pipeline.sessions() as db:
                runs = list(
                    db.scalars(select(AnalysisRun).where(AnalysisRun.cycle_id == "scale-out"))
                )
            if len(runs) == shards:
                break
            time.sleep(0.5)
        time.sleep(2)  # let the duplicate finish too
        with pipeline.sessions() as db:
            runs = list(db.scalars(select(AnalysisRun).where(AnalysisRun.cycle_id == "scale-out")))
        assert sorted(r.shard for r in runs) == sorted(f"{i}/{shards}" for i in range(shards))
        assert {r.worker.split("@")[0] for r in runs} == {
            f"w1-{queue_prefix}",
            f"w2-{queue_prefix}",
        }
        assert sum(r.points for r in runs) > 0
    finally:
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        client.close()
        pipeline.store.close()
