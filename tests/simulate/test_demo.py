"""``fleetwatch demo``: the pipeline runs, stores what it generates, and reports the truth."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fleetwatch.demo import DERIVED_MEASUREMENTS, DemoOptions, DemoRun, Stage, run_demo
from fleetwatch.settings import load_settings
from fleetwatch.store import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingStage(Stage):
    """What a later part (analysis, alerts, …) looks like when it joins the demo."""

    name = "counting"

    def __init__(self) -> None:
        self.ticks = 0
        self.samples = 0
        self.stopped = False

    def tick(self, run: DemoRun) -> None:
        self.ticks += 1
        self.samples += len(run.samples)

    def report(self, run: DemoRun) -> dict[str, Any]:
        return {"detection": {"ticks_seen": self.ticks}}

    def stop(self, run: DemoRun) -> None:
        self.stopped = True


def test_demo_stores_every_sample_and_reports_the_faults(tmp_path: Path) -> None:
    from fleetwatch.demo import default_stages

    options = DemoOptions(
        devices=30, faults=3, speed=600.0, duration_s=3.0, dashboard=False,
        report=tmp_path / "report.json", mqtt_port=free_port(),
    )  # fmt: skip
    settings = load_settings(data_dir=tmp_path / "data")
    extra = CountingStage()
    report = run_demo(options, settings, stages=[*default_stages(options), extra])
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == report
    assert report["devices"]["count"] == 30
    assert sum(report["devices"]["per_cohort"].values()) == 30
    with open_store(settings) as store:
        # The analysis stores its scores too; the telemetry is everything else.
        derived = sum(store.count(m) for m in DERIVED_MEASUREMENTS)
        stored = store.count() - derived
    assert report["analysis_points_stored"] == derived
    assert report["samples_generated"] > 0
    assert report["samples_stored"] == stored == report["samples_generated"]
    assert extra.stopped and extra.ticks == report["ticks"] > 0
    assert extra.samples == report["samples_generated"]
    assert report["detection"] == {"ticks_seen": extra.ticks}
    assert len(report["faults"]) == 3
    for fault in report["faults"]:
        assert fault["start"].endswith("+00:00") and "crossed_at" in fault and fault["series"]
    assert report["simulated_duration_s"] == report["ticks"] * options.step_s
    assert report["greengrass_mqtt"]["connected"] is False
    assert any("unreachable" in note for note in report["notes"])
    assert {"alerts", "actions", "detection"} <= set(report)


def test_demo_registers_the_fleet_in_the_state_db(tmp_path: Path) -> None:
    from fleetwatch.db import make_engine, session_factory, session_scope
    from fleetwatch.fleet import service

    options = DemoOptions(devices=12, faults=0, speed=None, duration_s=0.5, dashboard=False,
                          mqtt_port=free_port())  # fmt: skip
    settings = load_settings(data_dir=tmp_path)
    report = run_demo(options, settings)
    assert not [n for n in report["notes"] if "state DB" in n]
    engine = make_engine(settings.database_url)
    with session_scope(session_factory(engine)) as db:
        devices, total = service.list_devices(db=db, limit=100)
        assert total == 12
        assert {d.runtime for d in devices} <= {"iotedge", "greengrass"}
        assert all(d.node_name and d.hardware_model for d in devices)
    engine.dispose()


def run_cli(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from fleetwatch.cli import main; main()", "demo", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


@pytest.mark.slow
def test_cli_demo_runs_its_duration_and_the_report_matches_the_store(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    started = time.monotonic()
    proc = run_cli([
        "--devices", "200", "--speed", "60", "--duration", "10", "--no-dashboard",
        "--report", str(report), "--data-dir", str(tmp_path / "data"),
    ])  # fmt: skip
    out, _ = proc.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out
    data = json.loads(report.read_text())
    assert data["devices"]["count"] == 200
    with open_store(load_settings(data_dir=tmp_path / "data")) as store:
        derived = sum(store.count(m) for m in DERIVED_MEASUREMENTS)
        assert data["samples_stored"] == store.count() - derived > 0
    assert data["samples_stored"] == data["samples_generated"]
    assert data["faults"] and all("crossed_at" in f for f in data["faults"])
    assert 10 <= data["wall_duration_s"] < 20  # its duration plus start/stop, on a busy machine
    assert elapsed < 60
    assert "samples" in out and "done" in out


@pytest.mark.slow
def test_ctrl_c_finishes_the_tick_writes_the_report_and_exits_zero(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = run_cli([
        "--devices", "40", "--no-dashboard", "--report", str(report),
        "--data-dir", str(tmp_path / "data"),
    ])  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "fleetwatch demo" in first
    # The first progress line shows the loop is running (the API's loud insecure-local
    # warning may come before it).
    for _ in range(20):
        line = proc.stdout.readline()
        if line.startswith("sim") or not line:
            break
    assert line.startswith("sim"), line
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    data = json.loads(report.read_text())
    with open_store(load_settings(data_dir=tmp_path / "data")) as store:
        derived = sum(store.count(m) for m in DERIVED_MEASUREMENTS)
        assert data["samples_stored"] == store.count() - derived == data["samples_generated"] > 0
