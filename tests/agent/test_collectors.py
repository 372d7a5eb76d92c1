"""The agent with the real collector plugins (found through entry points) on real-format files."""

from __future__ import annotations

from pathlib import Path

from fleetwatch.agent.config import AgentSettings
from fleetwatch.agent.lanes import lane_of
from fleetwatch.agent.runner import Agent
from tests.agent.conftest import REPO, Receiver

FIXTURES = REPO / "tests" / "fixtures"


def test_sysfs_and_tegrastats_collectors_ship_through_the_agent(
    receiver: Receiver, tmp_path: Path
) -> None:
    conf = AgentSettings.model_validate(
        {
            "device": "gateway-1",
            "site": "plant-a",
            "uplink": "ingest",
            "uplink_url": receiver.url,
            "collectors": [
                {
                    "plugin": "jetson",
                    "device": "orin-7",
                    "config": {"sysfs_root": str(FIXTURES / "jetson_sysfs")},
                },
                {"plugin": "coral", "config": {"sysfs_root": str(FIXTURES / "coral_sysfs")}},
                {
                    "plugin": "tegrastats",
                    "device": "orin-7",
                    "config": {"file": str(FIXTURES / "tegrastats_jp6.txt")},
                },
            ],
        }
    )
    agent = Agent(conf, buffer_dir=tmp_path)  # registry from the entry points
    stats = agent.run_once()
    agent.stop()

    got = receiver.samples()
    assert stats["collector_errors"] == {} and stats["dropped"] == {}
    assert len(got) == stats["samples_sent"] > 50
    # The agent's site and each instance's device reach the samples through the plugin config.
    assert {s.site for s in got} == {"plant-a"}
    assert {s.device for s in got} == {"orin-7", "gateway-1"}
    temps = {s.labels.get("sensor") for s in got if s.name == "temperature_celsius"}
    assert "apex_0" in temps and len(temps) > 2
    assert {lane_of(s.name) for s in got} == {"thermal", "bulk"}
