"""The agent end to end in-process: collectors, validation, lanes, uplink outcomes, self-metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel

from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.runner import Agent
from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.plugins import CollectorCapabilities, CollectResult, PluginRegistry
from fleetwatch.plugins.collector import Collector
from fleetwatch.telemetry import Sample
from tests.agent.conftest import Receiver, as_points, write_spool


class NoConfig(BaseModel):
    model_config = {"extra": "forbid"}


class ExplodingCollector(Collector):
    name = "exploding"
    config_model = NoConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"})
    )

    def collect(self) -> CollectResult:
        raise RuntimeError("sensor bus on fire")


def registry() -> PluginRegistry:
    reg = PluginRegistry()
    reg.register("fleetwatch.collectors", "exploding", ExplodingCollector)
    return reg


def settings(url: str, spool: Path, **extra: Any) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "device": "gw-1",
            "site": "lab",
            "uplink": "ingest",
            "uplink_url": url,
            "collectors": [
                {"plugin": "spool", "config": {"directory": str(spool)}},
                {"plugin": "exploding"},
            ],
            **extra,
        }
    )


def test_good_samples_arrive_exactly_and_bad_ones_are_counted(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    workload = GatewayWorkload(2, site="")  # no site label: the agent stamps it
    good = [s for tick in workload.ticks(3) for s in tick]
    bad = [
        Sample("bad name!", {"device": "d"}, 1.0, 1),
        Sample("temperature_celsius", {"device": "d"}, float("nan"), 1),
    ]
    write_spool(spool_dir, "a", good + bad)
    (spool_dir / "b.jsonl").write_text('{"name": "x"}\nnot json\n')
    agent = Agent(settings(receiver.url, spool_dir), registry=registry(), buffer_dir=tmp_path / "b")
    stats = agent.run_once()
    agent.stop()

    expected = [Sample(s.name, {**s.labels, "site": "lab"}, s.value, s.timestamp_ms) for s in good]
    assert sorted(as_points(receiver.samples())) == sorted(as_points(expected))
    assert stats["samples_sent"] == len(good)
    assert stats["dropped"] == {"bulk/invalid": 1, "thermal/invalid": 1}
    assert stats["collector_errors"] == {"spool": 2, "exploding": 1}
    assert list(spool_dir.iterdir()) == []  # acknowledged once durable


def test_a_4xx_batch_is_quarantined_once_and_the_rest_flows(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    samples = [s for tick in GatewayWorkload(1).ticks(4) for s in tick if s.name == "fan_pwm_ratio"]
    write_spool(spool_dir, "a", samples[:2])
    conf = settings(receiver.url, spool_dir)
    agent = Agent(conf, registry=registry(), buffer_dir=tmp_path / "b")
    receiver.statuses = [400]
    agent.run_once()
    write_spool(spool_dir, "b", samples[2:])
    stats = agent.run_once()
    agent.stop()
    assert stats["dropped"] == {"thermal/rejected": 2}
    assert stats["send_errors"] == {"http_400": 1}
    assert as_points(receiver.samples()) == as_points(samples[2:])
    assert len(list((tmp_path / "b" / "quarantine").glob("*.fwd"))) == 1


def test_5xx_401_and_refused_connections_are_retried_never_dropped(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    samples = [s for tick in GatewayWorkload(1).ticks(2) for s in tick]
    write_spool(spool_dir, "a", samples)
    down = Agent(
        settings("http://127.0.0.1:9", spool_dir), registry=registry(), buffer_dir=tmp_path
    )
    assert down.run_once()["send_errors"] == {"connection": 1}
    down.stop()
    agent = Agent(settings(receiver.url, spool_dir), registry=registry(), buffer_dir=tmp_path)
    receiver.statuses = [503, 401, 429]
    for _ in range(3):
        assert agent.ship_once() == "retry"
    stats = agent.run_once()
    agent.stop()
    assert stats["dropped"] == {}
    assert sorted(as_points(receiver.samples())) == sorted(as_points(samples))


def test_metrics_and_healthz_are_served(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    write_spool(spool_dir, "a", GatewayWorkload(1).tick())
    conf = settings(receiver.url, spool_dir, metrics_port=0, flush_interval_s=3600)
    agent = Agent(conf, registry=registry(), buffer_dir=tmp_path)
    agent.start()
    try:
        assert agent.status is not None
        base = f"http://127.0.0.1:{agent.status.port}"
        for _ in range(100):  # the collector thread runs at once; wait for its append
            if agent.stats()["buffer"]["bulk"]["samples"]:
                break
            agent._stop.wait(0.05)
        text = httpx.get(f"{base}/metrics").text
        health = httpx.get(f"{base}/healthz")
    finally:
        agent.stop()
    assert 'fleetwatch_agent_buffer_samples{lane="bulk"} 26.0' in text
    assert 'fleetwatch_agent_buffer_samples{lane="health"} 18.0' in text
    assert 'fleetwatch_agent_collector_errors_total{instance="exploding"}' in text
    assert "fleetwatch_agent_oldest_unsent_age_seconds" in text
    assert "fleetwatch_agent_samples_sent_total 0.0" in text
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_deadband_error_is_within_tolerance_and_heartbeat(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    truth = [
        s
        for tick in GatewayWorkload(3).ticks(120)
        for s in tick
        if s.name in ("temperature_celsius", "power_watts")
    ]
    rules = [
        {"metric": "temperature_celsius", "tolerance": 0.25, "heartbeat_s": 60},
        {"metric": "power_*", "tolerance": 0.1, "heartbeat_s": 300},
    ]
    conf = settings(receiver.url, spool_dir, deadband=rules)
    agent = Agent(conf, registry=registry(), buffer_dir=tmp_path)
    agent.ingest(truth)
    stats = agent.run_once()
    agent.stop()
    sent = receiver.samples()
    assert stats["suppressed"] == len(truth) - len(sent) > len(truth) // 2
    held: dict[object, Sample] = {}
    by_series: dict[object, list[Sample]] = {}
    for s in sent:
        by_series.setdefault(s.series, []).append(s)
    for s in truth:  # step-hold reconstruction at the receiver
        sent_here = [x for x in by_series[s.series] if x.timestamp_ms <= s.timestamp_ms]
        held[s.series] = sent_here[-1]
        tol, heartbeat_ms = (0.25, 60_000) if s.name == "temperature_celsius" else (0.1, 300_000)
        assert abs(held[s.series].value - s.value) <= tol
        assert s.timestamp_ms - held[s.series].timestamp_ms < heartbeat_ms


def test_objects_that_are_not_samples_are_counted_not_fatal(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    good = GatewayWorkload(1).tick()
    junk: list[Any] = ["not a sample", None, Sample("cpu_utilization_ratio", None, 1.0, 1)]  # type: ignore[arg-type]
    agent = Agent(settings(receiver.url, spool_dir), registry=registry(), buffer_dir=tmp_path)
    assert agent.ingest([*junk, *good]) == len(good)
    stats = agent.run_once()
    agent.stop()
    assert stats["dropped"] == {"bulk/invalid": 3}
    assert len(receiver.samples()) == len(good)


def test_a_partial_acceptance_counts_the_refused_samples_by_lane(
    receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    tick = GatewayWorkload(1).tick()
    errors = [{"index": 0, "line": None, "message": "site 'x' is not this token's site"}]
    receiver.answer = json.dumps(
        {"accepted": len(tick) - 2, "rejected": 2, "errors": errors, "errors_total": 2}
    ).encode()
    receiver.statuses = [429]
    agent = Agent(settings(receiver.url, spool_dir), registry=registry(), buffer_dir=tmp_path)
    agent.ingest(tick)
    assert agent.ship_once() == "retry"
    assert agent._retry_after == 7.0  # the receiver's Retry-After is honoured by the loop
    stats = agent.run_once()
    agent.stop()
    # Index 0 of the decoded batch is the first series: device_healthy, a health sample.
    assert stats["dropped"] == {"health/refused": 1, "unknown/refused": 1}
    assert stats["samples_sent"] == len(tick) - 2


@pytest.mark.parametrize(
    ("api", "path", "auth"),
    [
        ("v1", "/write?db=fw&precision=ms&u=reader&p=s3cret", None),
        ("v2", "/api/v2/write?org=acme&bucket=fw&precision=ms", "Token reader:s3cret"),
    ],
)
def test_influxdb_uplink_speaks_v1_and_v2(
    receiver: Receiver, tmp_path: Path, api: str, path: str, auth: str | None
) -> None:
    conf = AgentSettings(
        uplink_url=receiver.url,
        influx_api=api,  # type: ignore[arg-type]
        influx_database="fw",
        influx_org="acme",
        influx_bucket="fw",
        uplink_token="reader:s3cret",  # type: ignore[arg-type]
    )
    samples = GatewayWorkload(1).tick()
    agent = Agent(conf, buffer_dir=tmp_path)
    agent.ingest(samples)
    agent.run_once()
    agent.stop()
    (arrival,) = receiver.arrivals
    assert arrival.path == path
    assert arrival.headers.get("Authorization") == auth
    assert arrival.headers["Content-Encoding"] == "gzip"
    assert sorted(as_points(arrival.samples)) == sorted(as_points(samples))
