"""Zero loss under faults, against a real influxd, with the agent run through the CLI.

While a simulated gateway drops its telemetry into the spool directory, the uplink misbehaves in
every way a weak link does: requests cut half-way, answers lost after the write happened (so the
agent re-sends), connections refused, a request stalled and the agent SIGKILLed in the middle of
it, InfluxDB killed and restarted, and a second SIGKILL while the backlog drains. Afterwards every
generated sample is in InfluxDB exactly once per series + timestamp with its exact value.

``OUTAGE_S`` is the length of the refused/InfluxDB-down phases together; the issue describes
minutes, the test keeps it to tens of seconds by default. Set ``AGENT_OUTAGE_S=300`` in the
environment for a five-minute soak.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.lanes import lane_of
from fleetwatch.agent.runner import Agent
from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.store.influxd_process import InfluxdProcess, free_port
from fleetwatch.telemetry import Sample
from tests.agent.conftest import (
    FLEETWATCH_BIN,
    REPO,
    TcpProxy,
    as_points,
    create_database,
    influx_query,
    stored_points,
    write_spool,
)

OUTAGE_S = float(os.environ.get("AGENT_OUTAGE_S", "16"))
pytestmark = [pytest.mark.influx, pytest.mark.slow]


class Gateway(threading.Thread):
    """Writes one workload tick to the spool directory every ``period_s`` and remembers it."""

    def __init__(self, spool: Path, n_devices: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.spool = spool
        self.workload = GatewayWorkload(n_devices, interval_ms=1000)
        self.period_s = period_s
        self.generated: list[Sample] = []
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.done.is_set():
            tick = self.workload.tick()
            write_spool(self.spool, f"{n:08d}", tick)
            self.generated.extend(tick)
            n += 1
            time.sleep(self.period_s)


class AgentProcess:
    """``fleetwatch agent --config ...`` as a child process that can be SIGKILLed."""

    def __init__(self, config: Path, log: Path, status_port: int) -> None:
        self.config = config
        self.log = log
        self.status_port = status_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(FLEETWATCH_BIN), "agent", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stats(self) -> dict[str, object] | None:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.status_port}/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        result: dict[str, object] = resp.json()
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def agent_config(tmp_path: Path, proxy: TcpProxy, spool: Path, status_port: int) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[agent]
uplink = "influxdb"
uplink_url = "http://127.0.0.1:{proxy.port}"
influx_database = "agent_faults"
timeout_s = 2.0
batch_max_samples = 700
flush_interval_s = 0.3
retry_initial_s = 0.2
retry_max_s = 1.0
metrics_port = {status_port}

[[agent.collectors]]
plugin = "spool"
interval_s = 0.2
config = {{ directory = "{spool}", max_files = 4 }}
"""
    )
    return path


def wait_drained(agent: AgentProcess, spool: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = agent.stats()
        if stats and not any(spool.iterdir()):
            lanes = stats["buffer"].values()  # type: ignore[union-attr]
            if all(lane["samples"] == 0 for lane in lanes):
                return
        time.sleep(0.5)
    raise AssertionError(f"agent did not drain its buffer in {timeout_s}s: {agent.stats()}")


def test_zero_loss_and_zero_duplicates_through_every_fault(tmp_path: Path) -> None:
    influxd = InfluxdProcess(tmp_path / "influxd")
    influxd.start()
    create_database(influxd.url, "agent_faults")
    proxy = TcpProxy(influxd.http_port)
    spool = tmp_path / "spool"
    spool.mkdir()
    status_port = free_port()
    agent = AgentProcess(
        agent_config(tmp_path, proxy, spool, status_port), tmp_path / "agent.log", status_port
    )
    gateway = Gateway(spool, n_devices=3)
    try:
        agent.start()
        gateway.start()
        time.sleep(3)
        for mode in ("cut_request", "drop_response", "refuse"):
            proxy.set_mode(mode)
            time.sleep(3 if mode != "refuse" else OUTAGE_S / 2)
        proxy.set_mode("stall")  # the next request hangs half-way: kill the agent inside it
        time.sleep(1.5)
        stalled_at_kill = proxy.faults["stall"]
        agent.kill()
        influxd.stop(kill=True)
        proxy.set_mode("pass")
        agent.start()
        time.sleep(OUTAGE_S / 2)  # InfluxDB is down: connections through the proxy fail
        influxd.start()
        time.sleep(2)
        agent.kill()  # a second SIGKILL while the backlog drains
        agent.start()
        time.sleep(2)
        gateway.done.set()
        gateway.join()
        wait_drained(agent, spool)
        stored = stored_points(influxd.url, "agent_faults")
        counts = {
            s["name"]: s["values"][0][1]  # type: ignore[index]
            for s in influx_query(influxd.url, "agent_faults", "SELECT COUNT(value) FROM /.*/")
        }
    finally:
        gateway.done.set()
        agent.stop()
        proxy.close()
        influxd.cleanup()

    # The faults really happened: cut requests, writes whose answer was lost, a stalled request.
    assert proxy.faults["cut_request"] > 0 and proxy.faults["drop_response"] > 0
    assert stalled_at_kill > 0
    expected = as_points(gateway.generated)
    assert len(expected) > 30_000
    assert len(set(expected)) == len(expected)
    assert counts == dict(Counter(p[0] for p in expected))  # per measurement: none lost
    missing = set(expected) - set(stored)
    extra = set(stored) - set(expected)
    assert not missing, f"{len(missing)} samples lost, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected points, e.g. {sorted(extra)[:3]}"
    assert len(stored) == len(expected)  # exactly once per series + timestamp


def test_a_too_small_buffer_drops_only_bulk_and_counts_every_drop(tmp_path: Path) -> None:
    influxd = InfluxdProcess(tmp_path / "influxd")
    influxd.start()
    create_database(influxd.url, "agent_small")
    proxy = TcpProxy(influxd.http_port)
    proxy.set_mode("refuse")
    conf = AgentSettings(
        uplink_url=f"http://127.0.0.1:{proxy.port}",
        influx_database="agent_small",
        buffer_max_bytes=64 * 1024,
        segment_bytes=4096,
        batch_max_samples=2000,
    )
    agent = Agent(conf, buffer_dir=tmp_path / "buffer")
    workload = GatewayWorkload(1)
    generated: list[Sample] = []
    try:
        for _ in range(70):  # an outage: health+thermal fit in 64 KiB, bulk does not
            tick = workload.tick()
            generated.extend(tick)
            agent.ingest(tick)
        assert agent.ship_once() == "retry"
        proxy.set_mode("pass")
        while agent.ship_once() == "accepted":
            pass
        stats = agent.stats()
        agent.stop()
        stored = set(stored_points(influxd.url, "agent_small"))
    finally:
        proxy.close()
        influxd.cleanup()

    missing = [p for p in as_points(generated) if p not in stored]
    dropped = stats["dropped"]
    assert set(dropped) <= {"bulk/evicted", "bulk/buffer_full"}
    assert sum(dropped.values()) > 0
    assert {lane_of(p[0]) for p in missing} == {"bulk"}
    assert len(missing) == sum(dropped.values())
    assert len(stored) == len(generated) - len(missing)
