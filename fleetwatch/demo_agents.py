"""``fleetwatch demo --via-agents``: each site's gateways ship through a gateway agent.

One in-process :class:`fleetwatch.agent.runner.Agent` per site buffers the site's samples on disk
(priority lanes, dense encoding) and posts them to the demo's own ingest endpoint, which stores
them. The store stage then only counts. At the end the agents drain their buffers, so every
generated sample is stored (or counted as dropped by the agent's own rules).
"""

from __future__ import annotations

import time
from typing import Any

from fleetwatch.demo import DemoRun, Stage

DRAIN_TIMEOUT_S = 60.0


class AgentStage(Stage):
    name = "agents"

    def __init__(self, api_url: Any) -> None:
        self.api_url = api_url  # a callable returning the served API's base URL
        self.agents: dict[str, Any] = {}

    def start(self, run: DemoRun) -> None:
        from fleetwatch.agent.config import AgentSettings
        from fleetwatch.agent.runner import Agent
        from fleetwatch.plugins import PluginRegistry

        base = self.api_url()
        for site in run.sim.sites:
            config = AgentSettings(
                site=site.name,
                uplink="ingest",
                uplink_url=base,
                fsync="interval",  # the demo's disk is not a gateway's: fsync once a second
                flush_interval_s=1.0,
            )
            agent = Agent(
                config,
                registry=PluginRegistry(),
                buffer_dir=run.settings.data_dir / "agents" / site.name,
            )
            agent.start()
            self.agents[site.name] = agent
        run.info["agents"] = f"{len(self.agents)} gateway agents shipping to {base}/api/v1/ingest"

    def tick(self, run: DemoRun) -> None:
        by_site: dict[str, list[Any]] = {}
        for sample in run.samples:
            by_site.setdefault(sample.site, []).append(sample)
        for site, samples in by_site.items():
            self.agents[site].ingest(samples)
        run.samples = []  # the store stage must not write them a second time

    def report(self, run: DemoRun) -> dict[str, Any]:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for agent in self.agents.values():
            while time.monotonic() < deadline and agent.ship_once() != "idle":
                pass
        return {"agents": {site: agent.stats() for site, agent in self.agents.items()}}

    def stop(self, run: DemoRun) -> None:
        for agent in self.agents.values():
            agent.stop()
