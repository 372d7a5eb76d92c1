"""edgeHub's built-in metrics (Prometheus text), shaped like the fixture (FORMATS.md §1.3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from fleetwatch.simulate.formats.iotedge import IOTHUB, PRIORITY, _Text

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

MS = ("ms_telemetry", "True")


def edge_hub_metrics(sim: Simulator, i: int) -> str:
    """The body edgeHub serves on :9600/metrics for device index ``i``."""
    rt, dev = sim.runtime, sim.devices[i]
    d = dev.id
    detector, forwarder, hub = f"{d}/objectDetector", f"{d}/telemetryForwarder", f"{d}/$edgeHub"
    out = _Text([("iothub", IOTHUB), ("edge_device", d), ("instance_number", rt.hub_instance[i])])
    detections, produced, sent = rt.detections[i], rt.upstream_in[i], rt.upstream_sent[i]
    out.family(
        "edgehub_messages_received_total", "counter", "Number of messages received from client"
    )
    out.sample(
        "edgehub_messages_received_total",
        [("id", detector), ("route_output", "detections"), MS],
        detections,
    )
    out.sample(
        "edgehub_messages_received_total",
        [("id", forwarder), ("route_output", "output1"), MS],
        produced,
    )
    out.family("edgehub_messages_sent_total", "counter", "Messages sent from edge hub")
    route = [
        ("from_route_output", "detections"),
        ("to_route_input", "input1"),
        ("priority", PRIORITY),
    ]
    out.sample(
        "edgehub_messages_sent_total",
        [("from", detector), ("to", forwarder), *route, MS],
        detections,
    )
    up = [("from_route_output", "output1"), ("to_route_input", ""), ("priority", PRIORITY)]
    out.sample(
        "edgehub_messages_sent_total", [("from", forwarder), ("to", "upstream"), *up, MS], sent
    )
    out.family(
        "edgehub_queue_length",
        "gauge",
        "Number of messages pending to be processed for the endpoint",
    )
    out.sample(
        "edgehub_queue_length", [("endpoint", "iothub"), ("priority", PRIORITY), MS], rt.queue[i]
    )
    out.sample(
        "edgehub_queue_length",
        [("endpoint", f"{forwarder}/input1"), ("priority", PRIORITY), MS],
        0,
    )
    out.family(
        "edgehub_messages_dropped_total", "counter", "Messages cleaned up because of TTL expired"
    )
    out.sample(
        "edgehub_messages_dropped_total",
        [("from", forwarder), ("from_route_output", "output1"), ("reason", "ttl_expiry"), MS],
        0,
    )
    out.family(
        "edgehub_messages_unack_total",
        "counter",
        "Total number of messages unack because storage failure",
    )
    _hub_summaries(out, sim, i, detector, forwarder, hub)
    _hub_tail(out, sim, i, detector, forwarder, hub)
    return out.text()


def _hub_summaries(
    out: _Text, sim: Simulator, i: int, detector: str, forwarder: str, hub: str
) -> None:
    rt = sim.runtime
    out.family("edgehub_message_size_bytes", "summary", "Size of messages received by EdgeHub")
    for ident, count, size in (
        (detector, rt.detections[i], 583),
        (forwarder, rt.upstream_in[i], 1258),
    ):
        qs = [float(round(size * f)) for f in (1.0, 1.05, 1.07, 1.2, 1.2, 1.2)]
        out.summary(
            "edgehub_message_size_bytes", [("id", ident)], math.floor(count * size * 1.0), count, qs
        )
    out.family(
        "edgehub_message_process_duration_seconds",
        "summary",
        "Time taken to process message in EdgeHub",
    )
    labels = [("from", forwarder), ("to", "upstream"), ("priority", PRIORITY), MS]
    qs = [0.01133, 0.04729, 0.08815, 0.37066, 1.2089, 1.2089]
    sent = rt.upstream_sent[i]
    out.summary(
        "edgehub_message_process_duration_seconds", labels, round(sent * 0.0455, 7), sent, qs
    )
    out.family("edgehub_message_send_duration_seconds", "summary", "Time taken to send a message")
    labels = [
        ("from", forwarder),
        ("to", "upstream"),
        ("from_route_output", "output1"),
        ("to_route_input", ""),
    ]
    qs = [0.0982264, 0.1184517, 0.1302288, 0.4127195, 0.9816632, 0.9816632]
    out.summary(
        "edgehub_message_send_duration_seconds", labels, round(sent * 0.1053665, 7), sent, qs
    )
    out.family("edgehub_gettwin_total", "counter", "Get twin calls")
    out.sample("edgehub_gettwin_total", [("source", "edge_hub"), ("id", detector), MS], 4)
    out.sample("edgehub_gettwin_total", [("source", "upstream"), ("id", hub), MS], 1)
    out.family("edgehub_gettwin_duration_seconds", "summary", "Time taken to get twin")
    out.summary(
        "edgehub_gettwin_duration_seconds",
        [("source", "upstream"), ("id", hub)],
        0.2357509,
        1,
        [math.nan] * 6,
    )


def _hub_tail(out: _Text, sim: Simulator, i: int, detector: str, forwarder: str, hub: str) -> None:
    rt = sim.runtime
    out.family("edgehub_reported_properties_total", "counter", "Reported properties update calls")
    out.sample("edgehub_reported_properties_total", [("target", "upstream"), ("id", hub), MS], 6)
    out.family("edgehub_direct_methods_total", "counter", "Direct methods routed through EdgeHub")
    out.family(
        "edgehub_direct_method_duration_seconds", "summary", "Time taken to call direct method"
    )
    out.family("edgehub_offline_count_total", "counter", "EdgeHub offline count")
    out.sample("edgehub_offline_count_total", [("id", hub), MS], rt.offline_count[i])
    out.family("edgehub_offline_duration_seconds", "summary", "EdgeHub offline time")
    done = rt.offline_sum_s[i]
    count = rt.offline_count[i] - (0 if math.isnan(rt.offline_since[i]) else 1)
    typical = done / count if count > 0 else math.nan
    out.summary(
        "edgehub_offline_duration_seconds",
        [("id", hub), MS],
        round(done, 3),
        max(count, 0),
        [round(typical, 3) if count > 0 else math.nan] * 6,
    )
    out.family(
        "edgehub_operation_retry_total",
        "counter",
        "Total number of times edgeHub operations were retried",
    )
    out.sample(
        "edgehub_operation_retry_total",
        [("id", hub), ("operation", "SendMessage"), MS],
        rt.offline_count[i] * 4,
    )
    out.family(
        "edgehub_client_connect_failed_total",
        "counter",
        "Total number of times clients failed to connect to edgeHub",
    )
    out.sample(
        "edgehub_client_connect_failed_total",
        [("id", forwarder), ("reason", "not_authenticated"), MS],
        0,
    )
    out.family(
        "edgehub_connected_clients", "gauge", "Current number of connected clients to edge hub"
    )
    detector_up = rt.down_until[i, 2] <= sim.t
    out.sample("edgehub_connected_clients", [MS], 2 + int(detector_up))
    restarts = rt.module_start[i, 2]
    out.family(
        "edgehub_client_connect_success_total",
        "counter",
        "Total number of times individual client successfully connect to edgeHub",
    )
    out.sample("edgehub_client_connect_success_total", [("id", detector), MS], restarts)
    out.sample("edgehub_client_connect_success_total", [("id", forwarder), MS], 1)
    out.family(
        "edgehub_client_disconnect_total",
        "counter",
        "Total number of times individual client disconnected from edgeHub",
    )
    out.sample("edgehub_client_disconnect_total", [("id", detector), MS], restarts - 1)
    out.sample("edgehub_client_disconnect_total", [("id", forwarder), MS], 0)
