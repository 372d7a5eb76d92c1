"""``fleetwatch agent`` as a long-running process: ships, serves /healthz, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.store.influxd_process import free_port
from tests.agent.conftest import FLEETWATCH_BIN, REPO, Receiver, write_spool


def test_the_agent_ships_serves_healthz_and_stops_on_sigterm(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(
        f"data_dir = '{tmp_path}'\n[agent]\nuplink = 'ingest'\nuplink_url = '{receiver.url}'\n"
        f"flush_interval_s = 0.2\nmetrics_port = {port}\n"
        f"[[agent.collectors]]\nplugin = 'spool'\ninterval_s = 0.2\n"
        f"config = {{ directory = '{spool_dir}' }}\n"
    )
    tick = GatewayWorkload(2).tick()
    write_spool(spool_dir, "a", tick)
    proc = subprocess.Popen(
        [str(FLEETWATCH_BIN), "agent", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(receiver.samples()) < len(tick) and time.monotonic() < deadline:
            time.sleep(0.1)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(receiver.samples()) == len(tick)
    assert health.status_code == 200 and health.json()["samples_sent"] == len(tick)
    assert f"fleetwatch_agent_samples_sent_total {float(len(tick))}" in metrics
    assert code == 0
