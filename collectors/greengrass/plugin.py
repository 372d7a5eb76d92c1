"""Greengrass collector plugins: MQTT on the gateway, the greengrassv2 API centrally."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from collectors._common import host_device, read_text
from collectors.greengrass.config import GreengrassCloudConfig, GreengrassMqttConfig
from collectors.greengrass.fss import FleetStatusAssembler
from collectors.greengrass.parse import (
    parse_core_device,
    parse_effective_deployments,
    parse_emitter,
    parse_fleet_status,
    parse_installed_components,
    site_of,
)
from fleetwatch.plugins import CollectError, Collector, CollectorCapabilities, CollectResult
from fleetwatch.telemetry import now_ms


class GreengrassMqttCollector(Collector):
    """Drain fleet status and emitter messages received since the last collection (push)."""

    name: ClassVar[str] = "greengrass"
    config_model: ClassVar[type[GreengrassMqttConfig]] = GreengrassMqttConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"gateway"}),
        push=True,
        description="Greengrass v2 fleet status and NucleusEmitter telemetry over MQTT",
    )

    def __init__(self, config: GreengrassMqttConfig) -> None:
        super().__init__(config)
        self.config: GreengrassMqttConfig = config
        self._queue: deque[tuple[str, bytes]] = deque()
        self._dropped = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client: Any = None
        self._assembler = FleetStatusAssembler(timeout_ms=int(config.chunk_timeout_s * 1000))

    # --- collection -----------------------------------------------------------------------
    def collect(self) -> CollectResult:
        result = CollectResult()
        if self.config.file is not None:
            self._read_file(result)
        elif self._client is None:
            self._connect(result)
        with self._lock:
            messages = list(self._queue)
            self._queue.clear()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            result.errors.append(
                CollectError(
                    self._broker(),
                    f"{dropped} messages dropped: more than "
                    f"{self.config.max_buffered} arrived between collections",
                )
            )
        for topic, payload in messages:
            self._handle(topic, payload, result)
        released, errors = self._assembler.expire(self._broker())
        result.errors.extend(errors)
        for message in released:
            result.extend(self._fleet_status(message, self._broker()))
        return result

    def _handle(self, topic: str, payload: bytes, result: CollectResult) -> None:
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            result.errors.append(CollectError(topic, f"message is not JSON: {exc}"))
            return
        if self._matches(self.config.emitter_topic, topic) or (
            isinstance(obj, list) and not self._matches(self.config.fleet_status_topic, topic)
        ):
            device = self.config.device or _wildcard_segment(self.config.emitter_topic, topic)
            result.extend(
                parse_emitter(
                    obj, device=device or host_device(), site=self.config.site, source=topic
                )
            )
            return
        ready, errors = self._assembler.add(obj, topic)
        result.errors.extend(errors)
        for message in ready:
            result.extend(self._fleet_status(message, topic))

    def _fleet_status(self, message: Any, source: str) -> CollectResult:
        return parse_fleet_status(
            message, device=self.config.device, site=self.config.site, source=source
        )

    def _read_file(self, result: CollectResult) -> None:
        path = self.config.file
        assert path is not None
        text = read_text(path, result.errors)
        if text is None:
            return
        source = str(path)
        try:  # one JSON document (the fixtures), else one message per line
            json.loads(text)
        except ValueError:
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    self._queue.append((f"{source}:{number}", line.encode()))
        else:
            self._queue.append((source, text.encode()))

    # --- MQTT -----------------------------------------------------------------------------
    def _topics(self) -> list[str]:
        return [t for t in (self.config.fleet_status_topic, self.config.emitter_topic) if t]

    def _broker(self) -> str:
        return f"mqtt://{self.config.host}:{self.config.port}"

    @staticmethod
    def _matches(pattern: str | None, topic: str) -> bool:
        if not pattern:
            return False
        from paho.mqtt.client import topic_matches_sub

        return bool(topic_matches_sub(pattern, topic))

    def _connect(self, result: CollectResult) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        cfg = self.config
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"fleetwatch-{uuid.uuid4().hex[:12]}",
        )
        if cfg.username is not None:
            password = cfg.password.get_secret_value() if cfg.password else None
            client.username_pw_set(cfg.username, password)
        if cfg.tls:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        try:
            client.connect(cfg.host, cfg.port, keepalive=60)
        except (OSError, ValueError) as exc:
            result.errors.append(CollectError(self._broker(), f"cannot connect: {exc}"))
            return
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(cfg.connect_timeout_s):
            result.errors.append(
                CollectError(
                    self._broker(), "no SUBACK yet; messages will be collected once subscribed"
                )
            )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            return
        topics = self._topics()  # (re)subscribe on every connect: a new session has none
        if topics:
            client.subscribe([(t, self.config.qos) for t in topics])
        else:
            self._subscribed.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            if len(self._queue) >= self.config.max_buffered:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append((message.topic, bytes(message.payload)))

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None
            self._subscribed.clear()


def _wildcard_segment(pattern: str | None, topic: str) -> str | None:
    """The topic level matched by the first ``+`` of ``pattern``, if any."""
    if not pattern or "+" not in pattern.split("/"):
        return None
    levels = topic.split("/")
    index = pattern.split("/").index("+")
    return levels[index] if index < len(levels) and levels[index] else None


# --- central: the greengrassv2 API ------------------------------------------------------------

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded"}
)


class _CallFailed(Exception):
    """A call that failed for good (not throttling, or throttled past max_attempts)."""


class GreengrassCloudCollector(Collector):
    """Poll core devices, their installed components and effective deployments."""

    name: ClassVar[str] = "greengrass_cloud"
    config_model: ClassVar[type[GreengrassCloudConfig]] = GreengrassCloudConfig
    capabilities: ClassVar[CollectorCapabilities] = CollectorCapabilities(
        placements=frozenset({"central"}),
        description="AWS IoT Greengrass v2 cloud API (greengrassv2): device, component and "
        "deployment state of every core device",
    )

    def __init__(
        self,
        config: GreengrassCloudConfig,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config)
        self.config: GreengrassCloudConfig = config
        self._client = client
        self._sleep = sleep
        self._jitter = jitter

    def collect(self) -> CollectResult:
        result = CollectResult()
        ts = now_ms()
        if self.config.file is not None:
            self._read_file(result, ts)
            return result
        filters: dict[str, Any] = {}
        if self.config.thing_group_arn:
            filters["thingGroupArn"] = self.config.thing_group_arn
        try:
            devices = [
                d
                for page in self._pages("list_core_devices", **filters)
                for d in page.get("coreDevices", [])
            ]
        except _CallFailed as exc:
            result.errors.append(CollectError("ListCoreDevices", str(exc)))
            return result
        for listed in devices:
            thing = listed.get("coreDeviceThingName") if isinstance(listed, dict) else None
            if not thing:
                result.errors.append(
                    CollectError("ListCoreDevices", f"item without a name: {listed!r}")
                )
                continue
            self._collect_device(thing, listed, ts, result)
        return result

    def _collect_device(
        self, thing: str, listed: dict[str, Any], ts: int, result: CollectResult
    ) -> None:
        try:
            core = self._call("get_core_device", coreDeviceThingName=thing)
        except _CallFailed as exc:
            result.errors.append(CollectError("GetCoreDevice", f"{thing}: {exc}"))
            core = listed  # the list item has the status too, only no tags
        site = site_of(core, self.config.site)
        result.extend(parse_core_device(core, site=site, timestamp_ms=ts))
        try:
            components = [
                c
                for page in self._pages(
                    "list_installed_components",
                    coreDeviceThingName=thing,
                    topologyFilter=self.config.topology,
                )
                for c in page.get("installedComponents", [])
            ]
        except _CallFailed as exc:
            result.errors.append(CollectError("ListInstalledComponents", f"{thing}: {exc}"))
        else:
            result.extend(
                parse_installed_components(components, device=thing, site=site, timestamp_ms=ts)
            )
        try:
            deployments = [
                d
                for page in self._pages("list_effective_deployments", coreDeviceThingName=thing)
                for d in page.get("effectiveDeployments", [])
            ]
        except _CallFailed as exc:
            result.errors.append(CollectError("ListEffectiveDeployments", f"{thing}: {exc}"))
        else:
            result.extend(
                parse_effective_deployments(deployments, device=thing, site=site, timestamp_ms=ts)
            )

    def _read_file(self, result: CollectResult, ts: int) -> None:
        path = self.config.file
        assert path is not None
        text = read_text(path, result.errors)
        if text is None:
            return
        try:
            data = json.loads(text)
        except ValueError as exc:
            result.errors.append(CollectError(str(path), f"not JSON: {exc}"))
            return
        device = self.config.device
        site = self.config.site
        for response in data if isinstance(data, list) else [data]:
            if isinstance(response, dict) and "coreDeviceThingName" in response:
                device = device or response["coreDeviceThingName"]
                site = site_of(response, site)
                result.extend(parse_core_device(response, site=site, timestamp_ms=ts))
            elif isinstance(response, dict) and "installedComponents" in response:
                result.extend(
                    parse_installed_components(
                        response, device=device or host_device(), site=site, timestamp_ms=ts
                    )
                )
            elif isinstance(response, dict) and "effectiveDeployments" in response:
                result.extend(
                    parse_effective_deployments(
                        response, device=device or host_device(), site=site, timestamp_ms=ts
                    )
                )
            else:
                result.errors.append(
                    CollectError(str(path), "not a greengrassv2 response this reads")
                )

    # --- boto3 with back-off ----------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            cfg = self.config
            session = boto3.Session(
                profile_name=cfg.profile,
                region_name=cfg.region,
                aws_access_key_id=cfg.aws_access_key_id,
                aws_secret_access_key=(
                    cfg.aws_secret_access_key.get_secret_value()
                    if cfg.aws_secret_access_key
                    else None
                ),
                aws_session_token=(
                    cfg.aws_session_token.get_secret_value() if cfg.aws_session_token else None
                ),
            )
            self._client = session.client(
                "greengrassv2",
                endpoint_url=cfg.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 2}),
            )
        return self._client

    def _call(self, operation: str, **params: Any) -> Any:
        method = getattr(self.client(), operation)
        for attempt in range(self.config.max_attempts):
            try:
                return method(**params)
            except Exception as exc:  # botocore raises ClientError and BotoCoreError subclasses
                self._retry_or_fail(operation, exc, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Pages from botocore's paginator; a throttled page is retried from its nextToken."""
        paginator = self.client().get_paginator(operation)
        token: str | None = None
        attempt = 0
        while True:
            config = {"StartingToken": token} if token else {}
            try:
                for page in paginator.paginate(**params, PaginationConfig=config):
                    attempt = 0
                    yield page
                    token = page.get("nextToken")
                return
            except Exception as exc:
                self._retry_or_fail(operation, exc, attempt)
                attempt += 1

    def _retry_or_fail(self, operation: str, exc: Exception, attempt: int) -> None:
        """Sleep before the next try of a throttled call, or raise :class:`_CallFailed`."""
        response = getattr(exc, "response", None) or {}
        code = response.get("Error", {}).get("Code", "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        throttled = code in THROTTLING_CODES or status == 429
        if not throttled:
            message = response.get("Error", {}).get("Message") or str(exc)
            raise _CallFailed(f"{operation}: {code or type(exc).__name__}: {message}") from exc
        if attempt + 1 >= self.config.max_attempts:
            tries = self.config.max_attempts
            raise _CallFailed(
                f"{operation}: still throttled ({code or status}) after {tries} tries"
            ) from exc
        delay = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
        self._sleep(delay * (0.5 + 0.5 * self._jitter()))  # "equal jitter"
