"""Lanes: which metric goes where, and how a request is shared between lanes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.lanes import LANES, lane_of, lane_quotas
from fleetwatch.agent.runner import Agent
from fleetwatch.agent.workload import GatewayWorkload
from fleetwatch.plugins.catalogue import CATALOGUE
from tests.agent.conftest import Receiver


@pytest.mark.parametrize(
    ("name", "lane"),
    [
        ("component_state", "health"),
        ("device_healthy", "health"),
        ("deployment_status", "health"),
        ("module_restarts_total", "health"),
        ("module_availability_ratio", "health"),
        ("temperature_celsius", "thermal"),
        ("thermal_trip_point_celsius", "thermal"),
        ("coral_tpu_clock_hertz", "thermal"),
        ("fan_speed_rpm", "thermal"),
        ("power_watts", "thermal"),
        ("cpu_utilization_ratio", "bulk"),
        ("memory_used_bytes", "bulk"),
        ("edgehub_queue_length", "bulk"),
        ("gpu_temperature_c", "thermal"),  # not in the catalogue: placed by its shape
    ],
)
def test_lane_of(name: str, lane: str) -> None:
    assert lane_of(name) == lane


def test_every_catalogue_metric_has_a_lane() -> None:
    assert {lane_of(spec.name) for spec in CATALOGUE} == set(LANES)


backlogs = st.fixed_dictionaries({lane: st.integers(0, 5000) for lane in LANES})


@given(st.integers(1, 3000), backlogs)
def test_strict_quotas_fill_in_lane_order(limit: int, backlog: dict[str, int]) -> None:
    q = lane_quotas(limit, backlog)  # type: ignore[arg-type]
    assert sum(q.values()) == min(limit, sum(backlog.values()))
    assert q["health"] == min(limit, backlog["health"])
    if q["bulk"]:
        assert q["health"] == backlog["health"] and q["thermal"] == backlog["thermal"]


@given(st.integers(1, 3000), backlogs)
def test_shared_quotas_give_each_lane_its_share_and_waste_nothing(
    limit: int, backlog: dict[str, int]
) -> None:
    shares = {"health": 0.5, "thermal": 0.3, "bulk": 0.2}
    q = lane_quotas(limit, backlog, shares)  # type: ignore[arg-type]
    assert sum(q.values()) == min(limit, sum(backlog.values()))
    for lane, share in shares.items():
        assert q[lane] >= min(backlog[lane], int(limit * share))  # type: ignore[index]
        assert q[lane] <= backlog[lane]  # type: ignore[index]


def test_shared_drain_sends_bulk_alongside_health(receiver: Receiver, tmp_path: Path) -> None:
    conf = AgentSettings(
        uplink="ingest", uplink_url=receiver.url, drain_order="shared", batch_max_samples=1000
    )
    agent = Agent(conf, buffer_dir=tmp_path)
    workload = GatewayWorkload(5)
    for _ in range(20):  # 6000 samples of backlog, 1000 per request
        agent.ingest(workload.tick())
    assert agent.ship_once() == "accepted"
    agent.stop()
    first = [lane_of(s.name) for s in receiver.arrivals[0].samples]
    # Records are whole collections (90/80/130 samples), so shares hold to a record.
    assert abs(first.count("health") - 500) <= 90
    assert abs(first.count("thermal") - 300) <= 80
    assert abs(first.count("bulk") - 200) <= 130
