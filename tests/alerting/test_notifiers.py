"""Notifier payloads, signatures and retries over real HTTP on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from fleetwatch.alerting.delivery import RetryPolicy, deliver
from fleetwatch.alerting.notifiers.alertmanager import AlertmanagerWebhookNotifier
from fleetwatch.alerting.notifiers.pagerduty import PagerDutyNotifier, dedup_key
from fleetwatch.alerting.notifiers.slack import SlackNotifier
from fleetwatch.alerting.notifiers.teams import TeamsNotifier
from fleetwatch.alerting.notifiers.webhook import WebhookNotifier, verify_signature
from fleetwatch.alerting.outbox import ReceiverError, make_notifier
from fleetwatch.alerting.ruleset import Receiver
from fleetwatch.plugins import PluginRegistry
from fleetwatch.plugins.notifier import (
    DestinationError,
    Notification,
    NotificationAlert,
    Notifier,
    check_destination,
)

from .conftest import T0

SECRET = "s3cret-signing-key-0123"


def alert(
    i: int, status: str = "firing", severity: str = "error", summary: str = ""
) -> NotificationAlert:
    return NotificationAlert(
        status=status,
        labels={
            "alertname": "DeviceSilent",
            "site": "ber-1",
            "device": f"d{i}",
            "severity": severity,
        },
        annotations={
            "summary": summary or f"d{i} silent",
            "dashboard_url": f"http://127.0.0.1:8050/devices/d{i}",
        },
        starts_at=T0 + timedelta(seconds=i),
        ends_at=T0 + timedelta(minutes=10) if status == "resolved" else None,
        fingerprint=f"{i:016x}",
        generator_url=f"http://127.0.0.1:8050/alerts?fingerprint={i:016x}",
    )


def notification(
    *alerts: NotificationAlert, status: str = "firing", truncated: int = 0
) -> Notification:
    return Notification(
        receiver="ops",
        group_key='0:ops:{"alertname":"DeviceSilent","site":"ber-1"}',
        status=status,
        group_labels={"alertname": "DeviceSilent", "site": "ber-1"},
        common_labels={"alertname": "DeviceSilent", "site": "ber-1"},
        common_annotations={},
        alerts=alerts,
        external_url="http://127.0.0.1:8050",
        timestamp=T0,
        truncated_alerts=truncated,
    )


def send(notifier: Notifier, n: Notification, **policy: float) -> tuple[object, list[float]]:
    waits: list[float] = []
    with httpx.Client(timeout=5) as client:
        outcome = deliver(
            notifier,
            notifier.build(n),
            client=client,
            policy=RetryPolicy(
                **{"max_attempts": 4, "backoff_s": 0.01, "max_backoff_s": 5, **policy}
            ),
            now=T0,
            sleep=waits.append,
        )
    return outcome, waits


def test_pagerduty_trigger_event_fields_and_limits(receiver):
    cfg = {"routing_key": "R" * 32, "url": f"{receiver.url}/v2/enqueue"}
    pd = PagerDutyNotifier.from_mapping(cfg)
    long = "x" * 3000
    outcome, _ = send(pd, notification(alert(1, severity="critical", summary=long), alert(2)))
    assert outcome.state == "sent"
    (req,) = receiver.received
    assert req.path == "/v2/enqueue"
    event = req.json()
    assert set(event) == {
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "client",
        "client_url",
        "links",
    }
    assert event["routing_key"] == "R" * 32
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == dedup_key(notification().group_key)
    assert len(event["dedup_key"]) <= 255
    payload = event["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["severity"] == "critical"
    assert payload["source"] == "ber-1"
    assert payload["timestamp"] == "2026-12-04T12:00:01.000Z"
    assert payload["class"] == "DeviceSilent"
    assert payload["custom_details"]["firing"] == 2
    assert event["links"] == [
        {"href": "http://127.0.0.1:8050/devices/d1", "text": "Open in fleetwatch"}
    ]


def test_pagerduty_resolve_and_acknowledge_share_the_dedup_key(receiver):
    pd = PagerDutyNotifier.from_mapping({"routing_key": "k" * 32, "url": receiver.url})
    send(pd, notification(alert(1, "resolved"), status="resolved"))
    acked = replace(alert(1), acknowledged=True)
    send(pd, notification(acked))
    resolve, ack = (r.json() for r in receiver.received)
    key = dedup_key(notification().group_key)
    assert resolve == {"routing_key": "k" * 32, "event_action": "resolve", "dedup_key": key}
    assert ack == {"routing_key": "k" * 32, "event_action": "acknowledge", "dedup_key": key}


def test_pagerduty_severity_is_one_of_the_four():
    pd = PagerDutyNotifier.from_mapping({"routing_key": "k" * 32})
    for sev, expected in (("info", "info"), ("warning", "warning"), ("page-me", "warning")):
        body = json.loads(pd.build(notification(alert(1, severity=sev))).body)
        assert body["payload"]["severity"] == expected


def test_teams_adaptive_card_structure(receiver):
    teams = TeamsNotifier.from_mapping({"webhook_url": f"{receiver.url}/workflows/abc"})
    outcome, _ = send(teams, notification(*(alert(i) for i in range(12)), truncated=3))
    assert outcome.state == "sent"
    msg = receiver.received[0].json()
    assert msg["type"] == "message"
    (attachment,) = msg["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"
    title, facts, *lines = card["body"]
    assert title["type"] == "TextBlock" and title["text"] == "[FIRING:15] DeviceSilent ber-1"
    assert title["color"] == "Attention"
    assert facts == {
        "type": "FactSet",
        "facts": [
            {"title": "alertname", "value": "DeviceSilent"},
            {"title": "site", "value": "ber-1"},
        ],
    }
    assert len(lines) == 11  # ten alerts listed, then "and 5 more"
    assert lines[-1]["text"] == "and 5 more"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in fleetwatch",
            "url": "http://127.0.0.1:8050/devices/d0",
        }
    ]


def test_slack_block_kit(receiver):
    slack = SlackNotifier.from_mapping({"webhook_url": f"{receiver.url}/services/T/B/X"})
    send(slack, notification(alert(1), alert(2, "resolved")))
    msg = receiver.received[0].json()
    assert msg["text"] == "[FIRING:1] DeviceSilent ber-1"
    header, first, second, actions = msg["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[FIRING:1] DeviceSilent ber-1"},
    }
    assert first["text"]["text"] == ":rotating_light: *d1 silent (error)*"
    assert second["text"]["text"] == ":white_check_mark: *d2 silent (resolved)*"
    assert actions["elements"][0]["url"] == "http://127.0.0.1:8050/devices/d1"


def test_alertmanager_v4_every_field(receiver):
    am = AlertmanagerWebhookNotifier.from_mapping(
        {"url": f"{receiver.url}/hook", "bearer_token": "tok"}
    )
    send(am, notification(alert(1), alert(2, "resolved"), truncated=4))
    req = receiver.received[0]
    assert req.headers["Authorization"] == "Bearer tok"
    body = req.json()
    assert body == {
        "version": "4",
        "groupKey": '0:ops:{"alertname":"DeviceSilent","site":"ber-1"}',
        "truncatedAlerts": 4,
        "status": "firing",
        "receiver": "ops",
        "groupLabels": {"alertname": "DeviceSilent", "site": "ber-1"},
        "commonLabels": {"alertname": "DeviceSilent", "site": "ber-1"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:8050",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "DeviceSilent",
                    "site": "ber-1",
                    "device": "d1",
                    "severity": "error",
                },
                "annotations": {
                    "summary": "d1 silent",
                    "dashboard_url": "http://127.0.0.1:8050/devices/d1",
                },
                "startsAt": "2026-12-04T12:00:01.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:8050/alerts?fingerprint=0000000000000001",
                "fingerprint": "0000000000000001",
            },
            {
                "status": "resolved",
                "labels": {
                    "alertname": "DeviceSilent",
                    "site": "ber-1",
                    "device": "d2",
                    "severity": "error",
                },
                "annotations": {
                    "summary": "d2 silent",
                    "dashboard_url": "http://127.0.0.1:8050/devices/d2",
                },
                "startsAt": "2026-12-04T12:00:02.000Z",
                "endsAt": "2026-12-04T12:10:00.000Z",
                "generatorURL": "http://127.0.0.1:8050/alerts?fingerprint=0000000000000002",
                "fingerprint": "0000000000000002",
            },
        ],
    }


def test_webhook_signature_verifies_and_rejects_tampering_and_replays(receiver):
    hook = WebhookNotifier.from_mapping({"url": f"{receiver.url}/in", "secret": SECRET})
    send(hook, notification(alert(1)))
    req = receiver.received[0]
    ts, sig = req.headers["X-Fleetwatch-Timestamp"], req.headers["X-Fleetwatch-Signature"]
    assert ts == str(int(T0.timestamp())) and sig.startswith("v1=") and len(sig) == 67
    key = SECRET.encode()
    ok = dict(secret=key, timestamp=ts, signature=sig)
    assert verify_signature(body=req.body, now=T0 + timedelta(seconds=30), **ok)
    tampered = req.body.replace(b"d1 silent", b"d1 happy!")
    assert not verify_signature(body=tampered, now=T0, **ok)
    assert not verify_signature(body=req.body, now=T0 + timedelta(seconds=301), **ok)
    assert not verify_signature(
        body=req.body, now=T0, secret=b"other-key-000000000", timestamp=ts, signature=sig
    )
    forged_ts = str(int(ts) + 60)  # moving the timestamp breaks the signature
    assert not verify_signature(
        body=req.body, now=T0, secret=key, timestamp=forged_ts, signature=sig
    )
    assert req.json()["version"] == "4"


def test_retry_on_429_honours_retry_after_then_succeeds(receiver):
    receiver.script((429, {"Retry-After": "2"}), (200, {}))
    hook = WebhookNotifier.from_mapping({"url": receiver.url, "secret": SECRET})
    outcome, waits = send(hook, notification(alert(1)))
    assert outcome.state == "sent"
    assert [a.status_code for a in outcome.attempts] == [429, 200]
    assert [a.outcome for a in outcome.attempts] == ["retry", "sent"]
    assert len(waits) == 1 and waits[0] >= 2.0
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


def test_retry_on_500_with_growing_backoff_until_exhausted(receiver):
    receiver.script(*[(500, {})] * 5)
    hook = WebhookNotifier.from_mapping({"url": receiver.url, "secret": SECRET})
    outcome, waits = send(hook, notification(alert(1)), backoff_s=1.0, max_backoff_s=30.0)
    assert outcome.state == "failed"
    assert [a.status_code for a in outcome.attempts] == [500, 500, 500, 500]
    assert [a.outcome for a in outcome.attempts] == ["retry", "retry", "retry", "failed"]
    # equal jitter: each wait lies in [base/2, base] with base doubling from 1 s
    assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 4
    assert outcome.attempts[0].error == '{"error":"scripted"}'


def test_no_retry_on_400(receiver):
    receiver.script((400, {}))
    hook = WebhookNotifier.from_mapping({"url": receiver.url, "secret": SECRET})
    outcome, waits = send(hook, notification(alert(1)))
    assert outcome.state == "failed"
    assert [a.status_code for a in outcome.attempts] == [400]
    assert waits == [] and len(receiver.received) == 1


def test_transport_error_is_retried(receiver):
    url = receiver.url
    receiver.stop()  # nothing listens any more: connection refused
    hook = WebhookNotifier.from_mapping({"url": url, "secret": SECRET})
    outcome, waits = send(hook, notification(alert(1)), max_attempts=3)
    assert outcome.state == "failed"
    assert [a.status_code for a in outcome.attempts] == [None, None, None]
    assert outcome.attempts[0].error == "ConnectError"
    assert len(waits) == 2


def test_long_retry_after_defers_instead_of_blocking(receiver):
    receiver.script((429, {"Retry-After": "120"}))
    hook = WebhookNotifier.from_mapping({"url": receiver.url, "secret": SECRET})
    outcome, waits = send(hook, notification(alert(1)), max_backoff_s=30)
    assert outcome.state == "pending" and waits == []
    assert outcome.next_attempt_at == T0 + timedelta(seconds=120)


def test_destinations_must_be_https_unless_allowed():
    check_destination("https://hooks.slack.com/services/x", [])
    check_destination("http://127.0.0.1:9/x", ["127.0.0.1"])
    with pytest.raises(DestinationError):
        check_destination("http://hooks.example.com/x", ["127.0.0.1"])
    with pytest.raises(DestinationError):
        check_destination("ftp://127.0.0.1/x", ["127.0.0.1"])


def test_secrets_stay_out_of_reprs_errors_and_delivery_log(receiver, tmp_path):
    token_url = f"{receiver.url}/services/T000/B000/TOPSECRETTOKEN"
    slack = SlackNotifier.from_mapping({"webhook_url": token_url})
    assert isinstance(slack.config.webhook_url, SecretStr)
    assert "TOPSECRETTOKEN" not in repr(slack.config)
    request = slack.build(notification(alert(1)))
    assert "TOPSECRETTOKEN" not in repr(request)
    outcome, _ = send(slack, notification(alert(1)))
    assert outcome.attempts[0].destination == receiver.url
    pd = PagerDutyNotifier.from_mapping({"routing_key": "ROUTINGKEYSECRET" * 2})
    assert "ROUTINGKEYSECRET" not in repr(pd.config) and "ROUTINGKEYSECRET" not in str(pd.config)
    registry = PluginRegistry.from_entry_points(["fleetwatch.notifiers"])
    from fleetwatch.alerting.config import AlertingSettings

    bad = Receiver(
        name="x", notifier="slack", config={"webhook_url": "http://evil.example/TOPSECRETTOKEN"}
    )
    with pytest.raises(ReceiverError) as err:
        make_notifier(bad, registry=registry, settings=AlertingSettings())
    assert "TOPSECRETTOKEN" not in str(err.value) and "evil.example" in str(err.value)


def test_entry_points_declare_all_five_notifiers(registry):
    assert registry.names("fleetwatch.notifiers") == [
        "alertmanager",
        "pagerduty",
        "slack",
        "teams",
        "webhook",
    ]


def test_timeouts_are_retried():
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(1.0)  # longer than the client's timeout
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        hook = WebhookNotifier.from_mapping(
            {"url": f"http://127.0.0.1:{server.server_port}/", "secret": SECRET}
        )
        waits: list[float] = []
        with httpx.Client(timeout=0.2) as client:
            outcome = deliver(
                hook,
                hook.build(notification(alert(1))),
                client=client,
                policy=RetryPolicy(max_attempts=2, backoff_s=0.01),
                now=T0,
                sleep=waits.append,
            )
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.state == "failed"
    assert [a.error for a in outcome.attempts] == ["ReadTimeout", "ReadTimeout"]
    assert [a.outcome for a in outcome.attempts] == ["retry", "failed"]
