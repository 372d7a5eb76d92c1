"""The Coral collector plugin: a thin adapter over :func:`collectors.coral.parse.read_apex`."""

from __future__ import annotations

from typing import ClassVar

from collectors._common import host_device
from collectors.coral.config import CoralConfig
from collectors.coral.parse import read_apex
from fleetwatch.plugins import Collector, CollectorCapabilities, CollectResult


class CoralCollector(Collector):
    """Edge TPU temperature, trip points, derived throttled clock and thermal headroom."""

    name: ClassVar[str] = "coral"
    config_model: ClassVar[type[CoralConfig]] = CoralConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"}),
        description="Google Coral Edge TPU (apex driver sysfs); the USB Accelerator has none",
    )

    def __init__(self, config: CoralConfig) -> None:
        super().__init__(config)
        self.config: CoralConfig = config

    def collect(self) -> CollectResult:
        return read_apex(
            self.config.sysfs_root,
            device=self.config.device or host_device(),
            site=self.config.site,
        )
