"""The IoT Edge collector plugin: scrape with httpx, parse with :mod:`.parse`."""

from __future__ import annotations

from typing import ClassVar

import httpx

from collectors._common import read_text
from collectors.iotedge.config import IoTEdgeConfig
from collectors.iotedge.parse import ExpositionResult, parse_exposition
from fleetwatch.plugins import CollectError, Collector, CollectorCapabilities, CollectResult
from fleetwatch.telemetry import now_ms

ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"


class IoTEdgeCollector(Collector):
    """Scrape IoT Edge's built-in metrics (and any module's) and report counter resets."""

    name: ClassVar[str] = "iotedge"
    config_model: ClassVar[type[IoTEdgeConfig]] = IoTEdgeConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway", "central"}),
        description="Azure IoT Edge edgeAgent/edgeHub /metrics and module Prometheus endpoints",
    )

    def __init__(self, config: IoTEdgeConfig, *, client: httpx.Client | None = None) -> None:
        super().__init__(config)
        self.config: IoTEdgeConfig = config
        self._client = client
        self._owns_client = client is None
        # (source, device) -> instance_number(s) seen at the last collection
        self._instances: dict[tuple[str, str], frozenset[str]] = {}

    def collect(self) -> CollectResult:
        result = CollectResult()
        if self.config.file is not None:
            text = read_text(self.config.file, result.errors)
            if text is not None:
                source = str(self.config.file)
                self._add(result, self._parse(text, source, None), source)
            return result
        for url in self.config.urls:
            self._scrape(url, result)
        return result

    def _scrape(self, url: str, result: CollectResult) -> None:
        try:
            response = self._http().get(url, headers=self._headers())
        except httpx.HTTPError as exc:
            result.errors.append(CollectError(url, f"scrape failed: {type(exc).__name__}: {exc}"))
            return
        if response.status_code != 200:
            result.errors.append(
                CollectError(
                    url, f"scrape failed: HTTP {response.status_code} {response.reason_phrase}"
                )
            )
            return
        content_type = response.headers.get("content-type", "")
        openmetrics = content_type.startswith("application/openmetrics-text")
        self._add(result, self._parse(response.text, url, openmetrics), url)

    def _parse(self, text: str, source: str, openmetrics: bool | None) -> ExpositionResult:
        return parse_exposition(
            text,
            device=self.config.device,
            site=self.config.site,
            timestamp_ms=now_ms(),
            source=source,
            openmetrics=openmetrics,
            keep_raw=self.config.keep_raw,
        )

    def _add(self, result: CollectResult, parsed: ExpositionResult, source: str) -> None:
        """Merge one target's result; report a changed instance_number as a counter reset."""
        result.extend(parsed)
        for device, numbers in parsed.instance_numbers.items():
            key = (source, device)
            current = frozenset(numbers)
            previous = self._instances.get(key)
            self._instances[key] = current
            if previous is not None and previous != current:
                result.events.append(
                    f"counter reset: {device} at {source}: instance_number "
                    f"{','.join(sorted(previous))} -> {','.join(sorted(current))}; "
                    "its counters restart from zero"
                )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": ACCEPT}
        if self.config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.config.bearer_token.get_secret_value()}"
        return headers

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.config.timeout_s, verify=self.config.verify_tls
            )
        return self._client

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
