"""Real transports: loopback HTTP scrapes, MQTT publishes to the local Mosquitto, sysfs files."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as mqtt
import pytest

from fleetwatch.simulate import FaultSpec, SimConfig, Simulator
from fleetwatch.simulate.physics import SENSOR_INDEX, sensor_types
from fleetwatch.simulate.transports import GreengrassPublisher, MetricsServer, SysfsMirror


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_http_server_serves_every_iotedge_device() -> None:
    sim = Simulator(SimConfig(devices=30, seed=2))
    server = MetricsServer(sim).start()
    try:
        assert server.port > 0
        iotedge = [d for d in sim.devices if d.runtime == "iotedge"]
        for device in iotedge[:3]:
            for module, render in (
                ("edgeAgent", sim.edge_agent_metrics),
                ("edgeHub", sim.edge_hub_metrics),
            ):
                r = httpx.get(server.url(device.id, module), timeout=5)
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
                assert r.text == render(device.id)
        sim.step()  # the next scrape shows the next tick
        r = httpx.get(server.url(iotedge[0].id), timeout=5)
        assert r.text == sim.edge_agent_metrics(iotedge[0].id)
        greengrass = next(d for d in sim.devices if d.runtime == "greengrass")
        assert httpx.get(server.url(greengrass.id), timeout=5).status_code == 404
        base = f"http://{server.host}:{server.port}"
        assert httpx.get(f"{base}/nobody/edgeAgent/metrics", timeout=5).status_code == 404
        assert httpx.get(f"{base}/{iotedge[0].id}/edgeHub", timeout=5).status_code == 404
    finally:
        server.stop()


def test_publisher_reports_an_unreachable_broker_instead_of_failing() -> None:
    sim = Simulator(SimConfig(devices=10, seed=2))
    publisher = GreengrassPublisher(sim, "127.0.0.1", free_port())
    assert publisher.connect(timeout_s=1.0) is False
    assert publisher.publish_tick() == 0


@pytest.mark.mqtt
def test_greengrass_devices_publish_fleet_status_and_telemetry_over_mqtt() -> None:
    # an unusual start time tells this test's messages apart from anyone else's on the broker
    start = datetime(2031, 5, 7, 3, 0, tzinfo=UTC)
    sim = Simulator(SimConfig(devices=30, seed=4, start=start))
    things = {d.id for d in sim.devices if d.runtime == "greengrass"}
    victim = sorted(things)[0]
    sim.inject(FaultSpec("crash_loop", victim, sim.t + 20, 1.0))
    prefix = f"fleetwatch-test-{uuid.uuid4().hex[:8]}"
    received: list[tuple[str, int, object]] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(client, userdata, msg) -> None:
        with lock:
            received.append((msg.topic, msg.qos, json.loads(msg.payload)))

    sub = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=prefix)
    sub.on_message = on_message
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.connect("127.0.0.1", 1883)
    sub.subscribe([("$aws/things/+/greengrassv2/health/json", 1), (f"{prefix}/+/telemetry", 0)])
    sub.loop_start()
    assert subscribed.wait(5)
    publisher = GreengrassPublisher(
        sim, telemetry_topic=prefix + "/{thing}/telemetry", cadence_s=120, client_id=prefix + "-pub"
    )
    assert publisher.connect()
    try:
        for _ in range(30):
            publisher.publish_tick()
            sim.step()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                mine = [r for r in received if _ours(r, things, sim)]
            if len([r for r in mine if "health" in r[0]]) >= len(things) * 2 + 2:
                break
            time.sleep(0.1)
    finally:
        publisher.close()
        sub.loop_stop()
        sub.disconnect()
    status = [(qos, body) for topic, qos, body in mine if topic.endswith("/health/json")]
    telemetry = [body for topic, qos, body in mine if topic.endswith("/telemetry")]
    assert all(qos == 1 for qos, _ in status)
    triggers = {(b["thing"], b["trigger"], b["messageType"]) for _, b in status}
    assert all((t, "NUCLEUS_LAUNCH", "COMPLETE") in triggers for t in things)
    assert any(tr == "CADENCE" and mt == "COMPLETE" for _, tr, mt in triggers)
    changes = [b for _, b in status if b["thing"] == victim and b["messageType"] == "PARTIAL"]
    assert changes and changes[0]["trigger"] == "COMPONENT_STATUS_CHANGE"
    assert {c["status"] for b in changes for c in b["components"]} >= {"ERRORED"}
    seqs = [b["sequenceNumber"] for _, b in status if b["thing"] == victim]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert telemetry and all(isinstance(t, list) and t[0]["N"] == "CpuUsage" for t in telemetry)


def _ours(record: tuple[str, int, object], things: set[str], sim: Simulator) -> bool:
    topic, _, body = record
    if topic.endswith("/telemetry"):
        return True
    return (
        isinstance(body, dict)
        and body.get("thing") in things
        and body["timestamp"] >= round(sim.config.start.timestamp() * 1000)
    )


def test_sysfs_mirror_keeps_trees_and_tegrastats_logs(tmp_path) -> None:
    sim = Simulator(SimConfig(devices=20, seed=6))
    mirror = SysfsMirror(sim, tmp_path)
    mirror.write_tick()
    sim.step(6)
    mirror.write_tick()
    jetson = next(d for d in sim.devices if d.profile.kind == "jetson")
    log = (mirror.device_root(jetson.id) / "tegrastats.log").read_text().splitlines()
    assert len(log) == 2 and log[0] != log[1]
    zone = mirror.device_root(jetson.id) / "devices/virtual/thermal/thermal_zone0/temp"
    first_zone = sensor_types(jetson)[0][0]
    assert int(zone.read_text()) == sim.state.sensor_mc[jetson.index, SENSOR_INDEX[first_zone]]
    assert not list(tmp_path.rglob(".*.tmp"))
