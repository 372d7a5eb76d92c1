"""Placement and capacity as Prometheus gauges, for KEDA / HPA (through a Prometheus adapter).

``HintsCollector`` reads the latest values when scraped (a custom collector, as the Prometheus
client recommends for values that live elsewhere), so nothing goes stale between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fleetwatch.actions.hints import PlacementHint, SiteCapacity

Snapshot = Callable[[], tuple[Sequence[PlacementHint], Sequence[SiteCapacity]]]


class HintsCollector(Collector):
    """``fleetwatch_node_placement_score{node,site}`` and
    ``fleetwatch_site_capacity_headroom_ratio{site}``, read from ``snapshot`` at scrape time."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        hints, sites = self.snapshot()
        score = GaugeMetricFamily(
            "fleetwatch_node_placement_score",
            "Placement score of a node, 0 (avoid) to 100 (best home for new work).",
            labels=["node", "site"],
        )
        for hint in hints:
            score.add_metric([hint.node, hint.site_id], float(hint.score))
        yield score
        headroom = GaugeMetricFamily(
            "fleetwatch_site_capacity_headroom_ratio",
            "Usable capacity minus declared demand, as a share of the site's nodes.",
            labels=["site"],
        )
        for site in sites:
            headroom.add_metric([site.site_id], site.headroom_now_ratio)
        yield headroom
