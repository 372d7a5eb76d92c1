"""Greengrass: FSS and emitter parsing on the fixtures, chunk reassembly, PARTIAL vs COMPLETE,
the cloud collector through botocore's Stubber (real service model), and MQTT through the real
local Mosquitto."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import paho.mqtt.client as mqtt
import pytest
from botocore.stub import Stubber

from collectors.greengrass.config import GreengrassCloudConfig, GreengrassMqttConfig
from collectors.greengrass.fss import FleetStatusAssembler
from collectors.greengrass.parse import (
    parse_effective_deployments,
    parse_emitter,
    parse_fleet_status,
    parse_installed_components,
    parse_message,
)
from collectors.greengrass.plugin import GreengrassCloudCollector, GreengrassMqttCollector
from fleetwatch.plugins.catalogue import COMPONENT_STATES
from fleetwatch.telemetry import partition
from tests.collectors.conftest import FIXTURES, find, one


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


FSS = load("greengrass_fleet_status.json")
EMITTER = load("greengrass_nucleus_emitter.json")


def states(samples: list, component: str) -> list[str]:
    return [
        s.labels["state"]
        for s in find(samples, "component_state", component=component)
        if s.value == 1
    ]


# --- fleet status ----------------------------------------------------------------------------


def test_fleet_status_fixture() -> None:
    result = parse_fleet_status(FSS, site="muc")
    assert result.errors == []
    s = result.samples
    assert one(s, "device_healthy") == 0.0  # UNHEALTHY: ObjectDetector is BROKEN
    assert states(s, "com.fleetwatch.ObjectDetector") == ["BROKEN"]
    assert states(s, "com.fleetwatch.ModelFetcher") == ["FINISHED"]
    assert states(s, "FleetStatusService") == ["RUNNING"]
    # one series per state for each component
    assert len(find(s, "component_state", component="main")) == len(COMPONENT_STATES)
    assert one(s, "component_count", state="RUNNING") == 7
    assert one(s, "component_count", state="BROKEN") == 1
    assert one(s, "component_count", state="FINISHED") == 3
    assert one(s, "component_count", state="ERRORED") == 0
    assert {x.labels["device"] for x in s} == {"orin-agx-017"}
    assert {x.timestamp_ms for x in s} == {1767262213742}
    assert partition(s).errors == []


def test_partial_message_gives_component_states_but_no_counts() -> None:
    partial = {
        **FSS,
        "messageType": "PARTIAL",
        "trigger": "COMPONENT_STATUS_CHANGE",
        "components": FSS["components"][:1],
    }
    s = parse_fleet_status(partial).samples
    assert states(s, "com.fleetwatch.ObjectDetector") == ["BROKEN"]
    assert find(s, "component_count") == []
    assert one(s, "device_healthy") == 0.0


def test_deployment_information_and_fss_only_states() -> None:
    message = copy.deepcopy(FSS)
    message.update(
        trigger="THING_GROUP_DEPLOYMENT",
        messageType="PARTIAL",
        deploymentInformation={
            "status": "FAILED",
            "deploymentId": "dep-9",
            "statusDetails": {"detailedStatus": "FAILED_ROLLBACK_COMPLETE"},
        },
    )
    message["components"][0]["status"] = "STATELESS"
    s = parse_fleet_status(message).samples
    assert one(s, "deployment_status", deployment="dep-9", status="FAILED") == 1.0
    assert one(s, "deployment_status", deployment="dep-9", status="SUCCEEDED") == 0.0
    assert states(s, "com.fleetwatch.ObjectDetector") == ["STATELESS"]


def test_bad_fields_are_errors_and_the_rest_is_kept() -> None:
    message = copy.deepcopy(FSS)
    message["components"][1] = {"componentName": 7}
    message["components"][2] = "nonsense"
    message["overallDeviceStatus"] = "SO-SO"
    message["timestamp"] = "yesterday"
    result = parse_fleet_status(message, timestamp_ms=1767262999000)
    assert len(result.errors) == 4
    assert states(result.samples, "com.fleetwatch.ObjectDetector") == ["BROKEN"]
    assert find(result.samples, "component_count") == []  # a count missing two would be wrong
    assert find(result.samples, "device_healthy") == []
    assert {x.timestamp_ms for x in result.samples} == {1767262999000}


@pytest.mark.parametrize("garbage", [None, 3, "text", [], {"thing": ""}, {"components": 5}])
def test_garbage_is_an_error_never_an_exception(garbage: Any) -> None:
    result = parse_fleet_status(garbage)
    assert result.errors and result.samples == []


# --- emitter ---------------------------------------------------------------------------------


def test_emitter_fixture() -> None:
    result = parse_emitter(EMITTER, device="orin-agx-017", site="muc")
    assert result.errors == []
    s = result.samples
    assert one(s, "cpu_utilization_ratio") == pytest.approx(0.3748125687018253)
    assert one(s, "memory_used_bytes") == 9418 * 1024 * 1024
    assert one(s, "open_file_descriptors") == 5184
    assert one(s, "component_count", state="BROKEN") == 1
    assert one(s, "component_count", state="RUNNING") == 9
    assert one(s, "component_count", state="STATELESS") == 0
    assert find(s, "cpu_utilization_ratio")[0].timestamp_ms == 1767262211000
    assert len(s) == 12


def test_emitter_bad_items_and_unknown_metrics() -> None:
    payload = [
        *EMITTER[:2],
        {"N": "CpuUsage", "NS": "SystemMetrics", "V": "high", "TS": 1},
        42,
        {
            "A": "Count",
            "N": "DiskQueueDepth",
            "NS": "SystemMetrics",
            "U": "Count",
            "V": 3,
            "TS": 1767262211000,
        },
    ]
    result = parse_emitter(payload, device="d")
    assert len(result.errors) == 2
    assert one(result.samples, "greengrass_system_metrics_disk_queue_depth") == 3
    assert one(result.samples, "open_file_descriptors") == 5184
    assert parse_message(EMITTER, device="d").samples  # an array is the emitter
    assert parse_emitter({"N": 1}, device="d").errors


# --- chunks ----------------------------------------------------------------------------------


def chunks(message: dict[str, Any], total: int) -> list[dict[str, Any]]:
    parts = [message["components"][i::total] for i in range(total)]
    return [
        {**message, "components": part, "chunkInfo": {"chunkId": i + 1, "totalChunks": total}}
        for i, part in enumerate(parts)
    ]


def test_chunks_are_reassembled_in_any_order_and_duplicates_ignored() -> None:
    assembler = FleetStatusAssembler()
    first, second, third = chunks(FSS, 3)
    ready = []
    for chunk in (third, first, third, second):
        messages, errors = assembler.add(chunk)
        assert errors == []
        ready += messages
    assert len(ready) == 1 and assembler.pending == 0
    assert "chunkInfo" not in ready[0]
    assert sorted(c["componentName"] for c in ready[0]["components"]) == sorted(
        c["componentName"] for c in FSS["components"]
    )
    s = parse_fleet_status(ready[0]).samples
    assert one(s, "component_count", state="RUNNING") == 7


def test_a_single_chunk_never_counts_components() -> None:
    s = parse_fleet_status(chunks(FSS, 2)[0]).samples
    assert find(s, "component_count") == []
    assert find(s, "component_state")


def test_missing_chunks_are_released_as_partial_after_the_timeout() -> None:
    clock = [1_000]
    assembler = FleetStatusAssembler(timeout_ms=60_000, clock=lambda: clock[0])
    first, _second = chunks(FSS, 2)
    assert assembler.add(first) == ([], [])
    assert assembler.expire() == ([], [])
    clock[0] += 60_000
    messages, errors = assembler.expire("topic")
    assert "only 1 of 2 chunks" in errors[0].message
    assert messages[0]["messageType"] == "PARTIAL"
    s = parse_fleet_status(messages[0]).samples
    assert find(s, "component_count") == []
    assert len(find(s, "component_state")) == len(first["components"]) * len(COMPONENT_STATES)


def test_bad_chunk_info_is_an_error_and_the_message_is_kept() -> None:
    messages, errors = FleetStatusAssembler().add({**FSS, "chunkInfo": {"chunkId": "x"}})
    assert errors and messages[0]["messageType"] == "PARTIAL"


# --- cloud API through botocore's Stubber ------------------------------------------------------


def cloud_client() -> Any:
    return boto3.client(
        "greengrassv2",
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def response(name: str) -> dict[str, Any]:
    data = load(name)
    data.pop("ResponseMetadata", None)
    return data


def listed(thing: str, status: str) -> dict[str, Any]:
    return {
        "coreDeviceThingName": thing,
        "status": status,
        "lastStatusUpdateTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }


def stub_device(stubber: Stubber, thing: str, core: dict[str, Any]) -> None:
    stubber.add_response("get_core_device", core, {"coreDeviceThingName": thing})
    stubber.add_response(
        "list_installed_components",
        response("greengrass_list_installed_components.json"),
        {"coreDeviceThingName": thing, "topologyFilter": "ROOT"},
    )
    stubber.add_response(
        "list_effective_deployments",
        response("greengrass_list_effective_deployments.json"),
        {"coreDeviceThingName": thing},
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_cloud_collector_paginates_and_maps_fixture_responses() -> None:
    client = cloud_client()
    core = response("greengrass_get_core_device.json")
    other = {**core, "coreDeviceThingName": "nano-003", "status": "HEALTHY", "tags": {}}
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_core_devices",
            {"coreDevices": [listed("orin-agx-017", "UNHEALTHY")], "nextToken": "p2"},
            {},
        )
        stubber.add_response(
            "list_core_devices",
            {"coreDevices": [listed("nano-003", "HEALTHY")]},
            {"nextToken": "p2"},
        )
        stub_device(stubber, "orin-agx-017", core)
        stub_device(stubber, "nano-003", other)
        collector = GreengrassCloudCollector(GreengrassCloudConfig(site="fallback"), client=client)
        result = collector.collect()
        stubber.assert_no_pending_responses()
    assert result.errors == []
    s = result.samples
    assert one(s, "device_healthy", device="orin-agx-017") == 0.0
    assert one(s, "device_healthy", device="nano-003") == 1.0
    assert {x.labels["site"] for x in find(s, "device_healthy", device="orin-agx-017")} == {
        "muc-plant-2"
    }
    assert {x.labels["site"] for x in find(s, "device_healthy", device="nano-003")} == {"fallback"}
    detector = [
        x.labels["state"]
        for x in find(
            s, "component_state", device="orin-agx-017", component="com.fleetwatch.ObjectDetector"
        )
        if x.value
    ]
    assert detector == ["BROKEN"]
    assert (
        one(
            s,
            "deployment_status",
            device="orin-agx-017",
            deployment="7a3d5f91-0c2e-4b8a-96d4-3e5f7a9b1c03",
            status="FAILED",
        )
        == 1.0
    )
    assert (
        one(
            s,
            "deployment_status",
            device="nano-003",
            deployment="0f6b2a71-93c4-4d8e-b5a2-7e1c9d3f4a60",
            status="SUCCEEDED",
        )
        == 1.0
    )
    assert partition(s).errors == []


def test_throttling_is_retried_with_growing_bounded_backoff() -> None:
    client = cloud_client()
    sleeps = Sleeps()
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_core_devices", {"coreDevices": [listed("orin-agx-017", "UNHEALTHY")]}, {}
        )
        for _ in range(3):
            stubber.add_client_error(
                "get_core_device",
                service_error_code="ThrottlingException",
                service_message="Rate exceeded",
                http_status_code=400,
            )
        stub_device(stubber, "orin-agx-017", response("greengrass_get_core_device.json"))
        collector = GreengrassCloudCollector(
            GreengrassCloudConfig(backoff_s=0.5, max_backoff_s=1.5),
            client=client,
            sleep=sleeps,
            jitter=lambda: 1.0,
        )
        result = collector.collect()
        stubber.assert_no_pending_responses()
    assert result.errors == []
    assert sleeps == [0.5, 1.0, 1.5]  # doubling, capped at max_backoff_s
    assert one(result.samples, "device_healthy") == 0.0


def test_persistent_throttling_becomes_a_collect_error() -> None:
    client = cloud_client()
    sleeps = Sleeps()
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_core_devices", {"coreDevices": [listed("orin-agx-017", "UNHEALTHY")]}, {}
        )
        for _ in range(3):
            stubber.add_client_error(
                "get_core_device",
                service_error_code="TooManyRequestsException",
                http_status_code=429,
            )
        stubber.add_response(
            "list_installed_components",
            response("greengrass_list_installed_components.json"),
            {"coreDeviceThingName": "orin-agx-017", "topologyFilter": "ROOT"},
        )
        stubber.add_response(
            "list_effective_deployments",
            response("greengrass_list_effective_deployments.json"),
            {"coreDeviceThingName": "orin-agx-017"},
        )
        collector = GreengrassCloudCollector(
            GreengrassCloudConfig(max_attempts=3), client=client, sleep=sleeps, jitter=lambda: 0.0
        )
        result = collector.collect()
        stubber.assert_no_pending_responses()
    assert len(sleeps) == 2
    assert [e.source for e in result.errors] == ["GetCoreDevice"]
    assert "still throttled" in result.errors[0].message
    # the list item still told the status, and components and deployments were collected
    assert one(result.samples, "device_healthy") == 0.0
    assert find(result.samples, "component_state")
    assert find(result.samples, "deployment_status")


def test_throttled_page_resumes_from_its_token() -> None:
    client = cloud_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_core_devices", {"coreDevices": [listed("a", "HEALTHY")], "nextToken": "t2"}, {}
        )
        stubber.add_client_error(
            "list_core_devices",
            service_error_code="ThrottlingException",
            http_status_code=400,
            expected_params={"nextToken": "t2"},
        )
        stubber.add_response(
            "list_core_devices", {"coreDevices": [listed("b", "HEALTHY")]}, {"nextToken": "t2"}
        )
        for thing in ("a", "b"):
            core = {**response("greengrass_get_core_device.json"), "coreDeviceThingName": thing}
            stub_device(stubber, thing, core)
        result = GreengrassCloudCollector(
            GreengrassCloudConfig(), client=client, sleep=Sleeps()
        ).collect()
        stubber.assert_no_pending_responses()
    assert result.errors == []
    assert {x.labels["device"] for x in find(result.samples, "device_healthy")} == {"a", "b"}


def test_access_denied_is_not_retried_and_not_a_crash() -> None:
    client = cloud_client()
    sleeps = Sleeps()
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "list_core_devices",
            service_error_code="AccessDeniedException",
            service_message="no",
            http_status_code=403,
        )
        result = GreengrassCloudCollector(
            GreengrassCloudConfig(), client=client, sleep=sleeps
        ).collect()
    assert sleeps == []
    assert result.samples == []
    assert "AccessDeniedException" in result.errors[0].message


def test_cloud_response_parsers_on_fixtures() -> None:
    installed = parse_installed_components(
        response("greengrass_list_installed_components.json"), device="d"
    )
    assert installed.errors == []
    assert states(installed.samples, "com.fleetwatch.TelemetryUploader") == ["RUNNING"]
    deployments = parse_effective_deployments(
        response("greengrass_list_effective_deployments.json")["effectiveDeployments"], device="d"
    )
    assert [x.labels["status"] for x in deployments.samples if x.value] == ["SUCCEEDED", "FAILED"]
    assert parse_installed_components(5, device="d").errors


# --- MQTT through the real Mosquitto -----------------------------------------------------------


@pytest.mark.mqtt
def test_mqtt_collector_drains_fleet_status_emitter_and_reports_bad_json() -> None:
    run = uuid.uuid4().hex[:8]
    thing = f"orin-{run}"
    collector = GreengrassMqttCollector(
        GreengrassMqttConfig(
            emitter_topic=f"fleetwatch-test/{run}/+/telemetry", site="muc", chunk_timeout_s=30
        )
    )
    publisher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    try:
        assert collector.collect().errors == []  # connects and subscribes
        publisher.connect("127.0.0.1", 1883)
        publisher.loop_start()
        fss_topic = f"$aws/things/{thing}/greengrassv2/health/json"
        message = {**FSS, "thing": thing}
        for chunk in chunks(message, 2):
            publisher.publish(fss_topic, json.dumps(chunk), qos=1).wait_for_publish(5)
        emitter_topic = f"fleetwatch-test/{run}/{thing}/telemetry"
        publisher.publish(emitter_topic, json.dumps(EMITTER), qos=1).wait_for_publish(5)
        publisher.publish(emitter_topic, b"{not json", qos=1).wait_for_publish(5)
        samples, errors = [], []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = collector.collect()
            samples += [x for x in result.samples if x.labels.get("device") == thing]
            errors += [e for e in result.errors if e.source == emitter_topic]
            if (
                errors
                and find(samples, "component_count", state="RUNNING")
                and find(samples, "open_file_descriptors")
            ):
                break
            time.sleep(0.1)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        collector.close()
    assert "not JSON" in errors[0].message
    assert one(samples, "device_healthy") == 0.0
    # both chunks arrived, so the reassembled COMPLETE message counts every component
    counts = [x.value for x in find(samples, "component_count", state="RUNNING")]
    assert 7.0 in counts and 9.0 in counts  # FSS (7 running) and the emitter (9)
    assert one(samples, "open_file_descriptors") == 5184


def test_mqtt_collector_reads_a_file_of_messages(tmp_path) -> None:
    path = tmp_path / "messages.jsonl"
    path.write_text(json.dumps(FSS) + "\n" + "oops\n" + json.dumps(EMITTER) + "\n")
    collector = GreengrassMqttCollector(GreengrassMqttConfig(file=path, device="gw-9"))
    result = collector.collect()
    assert [e.source for e in result.errors] == [f"{path}:2"]
    assert one(result.samples, "open_file_descriptors") == 5184
    assert {x.labels["device"] for x in result.samples} == {"gw-9"}
    assert [x.value for x in find(result.samples, "component_count", state="BROKEN")] == [1, 1]


def test_unreachable_broker_is_an_error_and_retried_next_time() -> None:
    import socket

    sock = socket.socket()  # a port nobody listens on
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    collector = GreengrassMqttCollector(GreengrassMqttConfig(port=port))
    for _ in range(2):
        result = collector.collect()
        assert result.samples == []
        assert "cannot connect" in result.errors[0].message
    collector.close()
