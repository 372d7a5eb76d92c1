"""IoT Edge: the tokenizer on real-format fixtures and nasty lines, the canonical mapping, and
the collector against a real loopback HTTP server (200, 500, refused, counter resets)."""

from __future__ import annotations

import json
import math
import socket

import pytest

from collectors.iotedge import _shapes
from collectors.iotedge.config import IoTEdgeConfig
from collectors.iotedge.exposition import tokenize
from collectors.iotedge.parse import parse_exposition
from collectors.iotedge.plugin import IoTEdgeCollector
from fleetwatch.telemetry import Sample, partition
from tests.collectors.conftest import FIXTURES, find, one

AGENT = (FIXTURES / "iotedge_edgeagent_metrics.txt").read_text()
HUB = (FIXTURES / "iotedge_edgehub_metrics.txt").read_text()
TS = 1_767_262_213_742


def test_fixtures_tokenize_like_the_capture_counts() -> None:
    agent, hub = tokenize(AGENT), tokenize(HUB)
    assert (agent.errors, hub.errors) == ([], [])
    # FORMATS.md §7: 22 families / 127 samples and 20 families / 66 samples
    assert (len(agent.families), len(agent.samples())) == (22, 127)
    assert (len(hub.families), len(hub.samples())) == (20, 66)
    assert agent.families["edgeAgent_used_cpu_percent"].type == "summary"
    assert agent.families["edgeAgent_module_start_total"].help == "Command sent to module"


def test_names_are_kept_as_exposed() -> None:
    agent, hub = tokenize(AGENT), tokenize(HUB)
    direct = agent.families["edgeagent_direct_method_invocations_count"]
    assert direct.type == "counter"
    assert {s.name for s in direct.samples} == {"edgeagent_direct_method_invocations_count"}
    assert [s.value for s in direct.samples] == [14.0, 1.0]
    assert hub.families["edgehub_messages_received_total"].samples[0].value == 41277.0


def test_json_label_values_round_trip() -> None:
    (meta,) = tokenize(AGENT).families["edgeAgent_metadata"].samples
    info = json.loads(meta.labels["host_information"])
    assert info["NumCpus"] == 12
    assert info["Provisioning"]["Type"] == "dps.x509"
    assert json.loads(meta.labels["experimental_features"]) == {
        "Enabled": False,
        "DisableCloudSubscriptions": False,
    }


def test_dotnet_numbers_nan_and_families_without_samples() -> None:
    agent, hub = tokenize(AGENT), tokenize(HUB)
    latency = agent.families["edgeAgent_command_latency_seconds"].samples
    wrap_sum = [s for s in latency if s.name.endswith("_sum") and s.labels["command"] == "wrap"]
    assert wrap_sum[0].value == pytest.approx(9.41e-05)
    deploy = agent.families["edgeAgent_deployment_time_seconds"].samples
    assert sum(math.isnan(s.value) for s in deploy) == 6
    assert hub.families["edgehub_direct_methods_total"].samples == []
    assert hub.families["edgehub_messages_unack_total"].type == "counter"


def test_raw_families_keep_exposed_labels_with_device_and_site() -> None:
    result = parse_exposition(HUB, site="muc-plant-2", timestamp_ms=TS)
    assert result.errors == []
    sent = find(result.samples, "edgehub_messages_sent_total", to="upstream")
    assert len(sent) == 1
    assert sent[0].value == 8611.0
    assert sent[0].labels["device"] == "orin-agx-017"
    assert sent[0].labels["site"] == "muc-plant-2"
    assert "edge_device" not in sent[0].labels
    assert "to_route_input" not in sent[0].labels  # empty means absent
    assert sent[0].labels["from"] == "orin-agx-017/telemetryForwarder"
    assert sent[0].timestamp_ms == TS
    assert one(result.samples, "edgehub_gettwin_total", id="orin-agx-017/$edgeHub") == 1.0


def test_canonical_series_of_the_fixtures() -> None:
    result = parse_exposition(AGENT + HUB, site="s", timestamp_ms=TS)
    s = result.samples
    assert one(s, "memory_used_bytes", module="objectDetector") == 2419068928
    host_memory = [x for x in find(s, "memory_used_bytes") if "module" not in x.labels]
    assert [x.value for x in host_memory] == [9876873216]
    assert one(s, "disk_free_bytes", disk="nvme0n1p1") == 402318086144
    assert one(s, "disk_total_bytes", disk="mmcblk0p1") == 61538615296
    assert one(s, "network_receive_bytes_total", module="edgeHub") == 9934417
    assert one(s, "network_transmit_bytes_total", module="telemetryForwarder") == 11803776
    assert one(s, "module_restarts_total", module="objectDetector") == 4
    assert one(s, "module_availability_ratio", module="objectDetector") == pytest.approx(
        85344.2561877 / 86709.7735504
    )
    assert one(s, "module_availability_ratio", module="edgeHub") == 1.0
    assert one(s, "cpu_utilization_ratio", module="objectDetector") == pytest.approx(0.26875)
    host_cpu = [x for x in find(s, "cpu_utilization_ratio") if "module" not in x.labels]
    assert [x.value for x in host_cpu] == [pytest.approx(0.3891724395751953)]
    assert one(s, "message_queue_length", endpoint="iothub") == 41
    assert one(s, "uplink_offline_total") == 3
    # the deployment quantiles are all NaN: the mean comes from _sum / _count
    assert one(s, "deployment_duration_seconds") == pytest.approx(4.7719382 / 2)
    assert all(x.labels["device"] == "orin-agx-017" for x in s)


def test_nan_quantiles_are_no_observation_not_errors() -> None:
    result = parse_exposition(AGENT + HUB, timestamp_ms=TS)
    assert result.errors == []
    assert result.no_observation == 12  # 6 deployment_time + 6 gettwin_duration quantiles
    assert not any(math.isnan(x.value) for x in result.samples)
    assert find(result.samples, "edgeAgent_deployment_time_seconds_count")[0].value == 2


def test_every_sample_passes_fleetwatch_validation() -> None:
    result = parse_exposition(AGENT + HUB, site="s", timestamp_ms=TS)
    checked = partition(result.samples)
    assert checked.errors == []


def test_configured_device_overrides_edge_device_and_clashing_labels_are_exported() -> None:
    text = 'm{edge_device="x",device="inner",site="a",value="v"} 1\n'
    (sample,) = [x for x in parse_exposition(text, device="gw-1", site="b").samples]
    assert sample.labels == {
        "device": "gw-1",
        "site": "b",
        "exported_device": "inner",
        "exported_site": "a",
        "exported_value": "v",
    }


def test_module_endpoint_without_edge_device_needs_a_device() -> None:
    text = "# TYPE inference_latency_seconds gauge\ninference_latency_seconds 0.031\n"
    dropped = parse_exposition(text, site="s")
    assert dropped.samples == []
    assert "no edge_device label" in dropped.errors[0].message
    kept = parse_exposition(text, device="orin-1", site="s")
    assert one(kept.samples, "inference_latency_seconds") == 0.031


def test_canonical_families_without_edge_device_are_reported_not_a_crash() -> None:
    text = (
        "# TYPE edgeAgent_used_memory_bytes gauge\n"
        'edgeAgent_used_memory_bytes{module_name="a"} 5\n'
        'edgeAgent_used_memory_bytes{module_name="b",edge_device="gw"} 7\n'
        "# TYPE edgeAgent_deployment_time_seconds summary\n"
        "edgeAgent_deployment_time_seconds_sum 4\n"
        "edgeAgent_deployment_time_seconds_count 2\n"
    )
    result = parse_exposition(text, site="s")
    assert "3 samples have no edge_device label" in result.errors[0].message
    assert [(s.name, s.labels) for s in result.samples if s.name == "memory_used_bytes"] == [
        ("memory_used_bytes", {"device": "gw", "site": "s", "module": "b"})
    ]
    assert not any(s.name == "deployment_duration_seconds" for s in result.samples)


@pytest.mark.parametrize(
    ("line", "labels", "value"),
    [
        ('a{b="x,y=}{z"} 3', {"b": "x,y=}{z"}, 3.0),
        ('a{b="say \\"hi\\", ok",c="d"} 4', {"b": 'say "hi", ok', "c": "d"}, 4.0),
        ('a{b="back\\\\slash\\nnext"} 5', {"b": "back\\slash\nnext"}, 5.0),
        ('a{b="1",} 6', {"b": "1"}, 6.0),
        ("a{} 7", {}, 7.0),
        ('a { b = "1" , c="2" } 8', {"b": "1", "c": "2"}, 8.0),
        ('a{b="$edgeHub"} +Inf', {"b": "$edgeHub"}, math.inf),
        ('a{b="1"} -Inf', {"b": "1"}, -math.inf),
        ('a{b="1"} 6.69E-05', {"b": "1"}, 6.69e-05),
        ("a 1e3", {}, 1000.0),
    ],
)
def test_label_and_value_syntax(line: str, labels: dict[str, str], value: float) -> None:
    # twice: the second copy takes the fast path the first one taught
    expo = tokenize(f"{line}\n{line}\n")
    assert expo.errors == []
    got = [(s.labels, s.value) for s in expo.samples()]
    assert got == [(labels, value), (labels, value)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('a{b="1"c="2"} 1', "expected ','"),
        ('a{b="1} 1', "unterminated"),
        ('a{b="1",b="2"} 1', "duplicate label"),
        ('a{1b="x"} 1', "invalid label name"),
        ("a{b=x} 1", "must be quoted"),
        ('a{b="\\q"} 1', "invalid escape"),
        ('a{b="1"} 1_000', "invalid value"),
        ('a{b="1"} one', "invalid value"),
        ('a{b="1"}', "without a value"),
        ('a{b="1"} 1 2 3', "too many fields"),
        ('a{b="1"} 1 12.5', "invalid timestamp"),
        ('0a{b="1"} 1', "invalid metric name"),
    ],
)
def test_bad_lines_are_errors_and_neighbours_survive(line: str, message: str) -> None:
    good = 'ok{b="1"} 1\n'
    expo = tokenize(good + line + "\n" + good)
    assert len(expo.errors) == 1
    assert message in expo.errors[0].message
    assert expo.errors[0].line == 2
    assert [s.value for s in expo.samples()] == [1.0, 1.0]


def test_timestamps_in_both_dialects() -> None:
    text = 'a{b="1"} 2 1700000000123\na{b="2"} 3\n'
    assert [s.timestamp_ms for s in tokenize(text, timestamp_ms=5).samples()] == [1700000000123, 5]
    om = '# TYPE a gauge\na{b="1"} 2 1700000000.5\n# EOF\n'
    expo = tokenize(om)
    assert expo.openmetrics and expo.errors == []
    assert expo.samples()[0].timestamp_ms == 1700000000500


def test_openmetrics_units_exemplars_counters_and_eof() -> None:
    om = (
        '# TYPE requests counter\n# UNIT requests requests\n# HELP requests Requests \\"served\\".\n'
        'requests_total{path="/a"} 10 # {trace_id="abc"} 1.0 1700000000.1\n'
        'requests_created{path="/a"} 1700000000\n'
        "# TYPE latency histogram\n"
        'latency_bucket{le="0.5"} 3\nlatency_bucket{le="+Inf"} 4\nlatency_sum 1.5\nlatency_count 4\n'
        "# EOF\n"
    )
    expo = tokenize(om)
    assert expo.errors == []
    requests = expo.families["requests"]
    assert (requests.type, requests.unit, requests.help) == (
        "counter",
        "requests",
        'Requests "served".',
    )
    assert [s.name for s in requests.samples] == ["requests_total", "requests_created"]
    assert [s.value for s in expo.families["latency"].samples] == [3, 4, 1.5, 4]
    truncated = tokenize(om.replace("# EOF\n", ""), openmetrics=True)
    assert truncated.errors[-1].message.endswith("does not end with # EOF")
    assert len(truncated.samples()) == 6
    after = tokenize(om + "late 1\n")
    assert "after # EOF" in after.errors[0].message


def test_a_eof_line_far_from_the_end_still_means_openmetrics() -> None:
    """The dialect guess reads only the end of the text, then any # EOF line changes it."""
    om = "# TYPE a counter\na_total 1 1700000000.5\n# EOF\n"
    late = "".join(f'b{{i="{i}"}} {i}\n' for i in range(10))
    guessed = tokenize(om + late, timestamp_ms=TS)
    assert guessed.openmetrics
    assert guessed == tokenize(om + late, openmetrics=True, timestamp_ms=TS)
    assert [s.timestamp_ms for s in guessed.samples()] == [1_700_000_000_500]
    assert [e.message for e in guessed.errors] == ["content after # EOF"] * 10
    plain = tokenize(late + "#EOF\n" + late + "  # EOF\n", timestamp_ms=TS)
    assert not plain.openmetrics  # neither is a line that starts with "# EOF"


def test_unknown_and_untyped_families_are_kept() -> None:
    text = '# TYPE a gauge\na 1\nmystery_metric{x="y"} 2\nmystery_metric{x="z"} 3\n'
    expo = tokenize(text)
    assert expo.families["mystery_metric"].type == "untyped"
    assert len(expo.families["mystery_metric"].samples) == 2


def test_blank_lines_and_leading_blanks_are_ignored() -> None:
    text = '\n  # TYPE a gauge\n\t a{b="1"} 2\r\n\n   \n'
    expo = tokenize(text)
    assert expo.errors == []
    assert expo.families["a"].type == "gauge"
    assert [s.value for s in expo.families["a"].samples] == [2.0]


def test_bad_comment_lines_are_errors() -> None:
    expo = tokenize("# TYPE a bogus\n# HELP\n# TYPE 1a gauge\n# just a comment\na 1\n")
    assert [e.line for e in expo.errors] == [1, 2, 3]
    assert expo.samples()[0].value == 1.0


def test_tokenizer_samples_equal_ordinary_samples() -> None:
    """The fast Sample construction builds exactly what the dataclass constructor builds."""
    text = 'a{b="1",c="2"} 3\na{b="1",c="2"} 3\n'
    fast = tokenize(text, timestamp_ms=TS).samples()
    assert fast == [Sample("a", {"b": "1", "c": "2"}, 3.0, TS)] * 2
    assert hash(fast[0].series) == hash(Sample("a", {"b": "1", "c": "2"}, 3.0, TS).series)


@pytest.mark.parametrize("device", [None, "gw-1"])
def test_empty_labels_are_dropped_alike_on_both_paths(device: str | None) -> None:
    """The first line takes the checked path and teaches its shape; the others take the fast."""
    _shapes.clear()
    line = 'empty_labels{a="",edge_device="%s",b="x",device="",c=""} 1\n'
    text = "".join(line % edge for edge in ("e1", "e1", "", "e2"))
    result = parse_exposition(text, device=device, site="s", timestamp_ms=TS)
    edges = ["e1", "e1", "e2"] if device is None else [device] * 4
    assert [s.labels for s in result.samples] == [
        {"device": edge, "b": "x", "site": "s"} for edge in edges
    ]
    order = list(result.samples[0].labels)  # the checked path's, for the fast path too
    assert [list(s.labels) for s in result.samples] == [order] * len(edges)


# --- the collector, against a real HTTP server on loopback -----------------------------------


def test_collector_scrapes_both_runtime_modules(http_server) -> None:
    agent = http_server.route("/agent", AGENT)
    hub = http_server.route("/hub", HUB)
    collector = IoTEdgeCollector(IoTEdgeConfig(urls=[agent, hub], site="muc"))
    try:
        result = collector.collect()
    finally:
        collector.close()
    assert result.errors == []
    assert one(result.samples, "message_queue_length", endpoint="iothub") == 41
    assert one(result.samples, "memory_used_bytes", module="edgeHub") == 148471808
    assert "text/plain;version=0.0.4" in http_server.requests[0][1]["Accept"]


def test_a_500_from_one_target_keeps_the_other(http_server) -> None:
    broken = http_server.route("/broken", "boom", status=500)
    hub = http_server.route("/hub", HUB)
    collector = IoTEdgeCollector(IoTEdgeConfig(urls=[broken, hub]))
    result = collector.collect()
    collector.close()
    assert len(result.errors) == 1
    assert result.errors[0].source == broken
    assert "HTTP 500" in result.errors[0].message
    assert one(result.samples, "uplink_offline_total") == 3


def test_refused_connection_is_an_error_not_a_crash() -> None:
    sock = socket.socket()  # a port nobody listens on: bind, note it, close
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    collector = IoTEdgeCollector(
        IoTEdgeConfig(urls=[f"http://127.0.0.1:{port}/metrics"], timeout_s=2)
    )
    result = collector.collect()
    collector.close()
    assert result.samples == []
    assert "scrape failed" in result.errors[0].message


def test_instance_number_change_is_reported_as_a_counter_reset(http_server) -> None:
    url = http_server.route("/agent", AGENT)
    collector = IoTEdgeCollector(IoTEdgeConfig(urls=[url]))
    assert collector.collect().events == []
    assert collector.collect().events == []  # same instance: nothing to report
    http_server.route(
        "/agent",
        AGENT.replace(
            "6f2c9d4e-8b1a-4c3e-9f07-2d5b8a1c4e90", "0d9a31c2-7e55-4b0a-8c3f-51b2e6a9d7f4"
        ),
    )
    events = collector.collect().events
    collector.close()
    assert len(events) == 1
    assert "counter reset" in events[0] and "orin-agx-017" in events[0]
    assert "6f2c9d4e" in events[0] and "0d9a31c2" in events[0]


def test_openmetrics_content_type_is_honoured(http_server) -> None:
    om = '# TYPE up gauge\nup{edge_device="d1"} 1 1700000000.25\n# EOF\n'
    url = http_server.route("/om", om, content_type="application/openmetrics-text; version=1.0.0")
    collector = IoTEdgeCollector(IoTEdgeConfig(urls=[url]))
    result = collector.collect()
    collector.close()
    assert result.errors == []
    assert find(result.samples, "up")[0].timestamp_ms == 1700000000250


def test_collector_reads_a_file(tmp_path) -> None:
    path = tmp_path / "scrape.txt"
    path.write_text(HUB + "garbage line here\n")
    result = IoTEdgeCollector(IoTEdgeConfig(file=path, device="gw")).collect()
    assert len(result.errors) == 1 and result.errors[0].source == str(path)
    assert one(result.samples, "message_queue_length", endpoint="iothub", device="gw") == 41
