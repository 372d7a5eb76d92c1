"""Lifecycle, grouping timers, inhibition, silences, acks, flapping and restarts, on a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fleetwatch.alerting import dispatch as dispatch_mod
from fleetwatch.alerting import service
from fleetwatch.alerting.models import Alert, AlertGroup, DeliveryAttempt, Notification
from fleetwatch.alerting.ruleset import load_config
from fleetwatch.fleet.models import Device
from fleetwatch.plugins import PluginRegistry

from .conftest import T0, make_settings, seed_fleet


def rules_config(url: str, **route: object) -> dict:
    return {
        "rules": [
            {
                "name": "SiteUnreachable",
                "kind": "absence",
                "target": "site",
                "silent_for": 60,
                "min_fraction": 0.8,
                "severity": "critical",
                "summary": "site {site} down",
            },
            {
                "name": "DeviceSilent",
                "kind": "absence",
                "target": "device",
                "silent_for": 60,
                "severity": "error",
                "summary": "{device} silent",
            },
        ],
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "site"],
            "group_wait": "30s",
            "group_interval": "60s",
            "repeat_interval": "600s",
            **route,
        },
        "receivers": [
            {"name": "hook", "notifier": "alertmanager", "config": {"url": f"{url}/hook"}},
            {"name": "pager", "notifier": "alertmanager", "config": {"url": f"{url}/pager"}},
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="SiteUnreachable"'],
                "target_matchers": ['alertname="DeviceSilent"'],
                "equal": ["site"],
            }
        ],
    }


class Harness:
    def __init__(self, state, store, settings, registry, clock):
        self.state, self.store, self.settings = state, store, settings
        self.registry, self.clock = registry, clock

    def evaluate(self):
        with self.state.session() as db:
            summary = service.evaluate(
                db=db, store=self.store, now=self.clock.now, settings=self.settings
            )
            db.commit()
            return summary

    def dispatch(self):
        with self.state.session() as db:
            return service.dispatch(
                db=db,
                now=self.clock.now,
                settings=self.settings,
                registry=self.registry,
                sleep=lambda _s: None,
            )

    def tick(self, at: float):
        self.clock.now = T0 + timedelta(seconds=at)
        return self.evaluate(), self.dispatch()

    def seen(self, devices, at: float):
        with self.state.session() as db:
            db.execute(
                update(Device)
                .where(Device.id.in_(devices))
                .values(last_seen_at=T0 + timedelta(seconds=at))
            )
            db.commit()

    def alerts(self, **filters):
        with self.state.session() as db:
            return service.list_alerts(db=db, **filters)


@pytest.fixture
def harness(any_db, metrics, registry, clock, receiver, tmp_path):
    """Runs every lifecycle test on SQLite and on PostgreSQL."""
    settings = make_settings(tmp_path, rules_config(receiver.url))
    with any_db.session() as db:
        seed_fleet(db, {"a": 5, "b": 5}, last_seen=T0)
    return Harness(any_db, metrics, settings, registry, clock)


def devices(site: str, *idx: int) -> list[str]:
    return [f"{site}-dev{i:05d}" for i in idx]


def bodies(receiver, path="/hook"):
    return [r.json() for r in receiver.received if r.path == path]


def test_group_wait_interval_and_repeat(harness, receiver):
    everyone = devices("a", 0, 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4)
    harness.seen(everyone, 100)
    harness.seen(devices("a", 0), 0)
    ev, dp = harness.tick(120)  # a-0 silent for 120 s: fires, group waits 30 s
    assert ev.fired == 1 and dp.groups_created == 1 and dp.notifications == 0
    harness.seen([d for d in everyone if d != "a-dev00000"], 140)
    harness.seen(devices("a", 1), 60)
    harness.tick(140)  # a-1 joins the waiting group
    assert receiver.received == []
    harness.seen([d for d in everyone if d not in devices("a", 0, 1)], 150)
    harness.tick(150)
    (first,) = bodies(receiver)
    assert sorted(a["labels"]["device"] for a in first["alerts"]) == devices("a", 0, 1)
    assert first["groupLabels"] == {"alertname": "DeviceSilent", "site": "a"}
    harness.seen(devices("a", 2), 100)
    harness.seen(devices("a", 3, 4) + devices("b", 0, 1, 2, 3, 4), 200)
    harness.tick(170)  # a-2 fires but the group flushes only at 150 + 60
    assert len(bodies(receiver)) == 1
    harness.tick(210)
    assert len(bodies(receiver)) == 2 and len(bodies(receiver)[1]["alerts"]) == 3
    harness.seen(devices("a", 3, 4) + devices("b", 0, 1, 2, 3, 4), 900)
    for at in (270, 330, 780):
        harness.tick(at)
    assert len(bodies(receiver)) == 2  # nothing new, repeat_interval not reached
    harness.tick(810)  # the reminder waits for the group's next flush (780 + 60)
    assert len(bodies(receiver)) == 2
    harness.tick(840)
    assert len(bodies(receiver)) == 3 and bodies(receiver)[2]["status"] == "firing"
    harness.seen(devices("a", 0), 850)
    harness.tick(850)  # a-0 resolves; the resolve goes out at the next flush (900)
    assert len(bodies(receiver)) == 3
    harness.tick(900)
    last = bodies(receiver)[3]
    resolved = [a for a in last["alerts"] if a["status"] == "resolved"]
    assert [a["labels"]["device"] for a in resolved] == devices("a", 0)
    assert resolved[0]["endsAt"] == "2026-12-04T12:14:10.000Z"


def test_site_outage_inhibits_device_silent(harness, receiver):
    harness.seen(devices("b", 0, 1, 2, 3, 4), 10_000)
    ev, _ = harness.tick(300)  # all of site a silent since T0
    assert ev.fired_by_rule == {"SiteUnreachable": 1, "DeviceSilent": 5}
    _, dp = harness.tick(400)
    assert dp.muted == 5
    (only,) = bodies(receiver)
    assert only["groupLabels"] == {"alertname": "SiteUnreachable", "site": "a"}
    assert only["alerts"][0]["annotations"]["summary"] == "site a down"


def test_silence_mutes_firing_but_lets_resolve_through(harness, receiver):
    harness.seen(devices("a", 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 10_000)
    harness.tick(100)
    harness.tick(130)
    assert len(bodies(receiver)) == 1
    with harness.state.session() as db:
        service.create_silence(
            db=db,
            now=harness.clock.now,
            matchers=['site="a"', 'alertname="DeviceSilent"'],
            ends_at=harness.clock.now + timedelta(hours=2),
            created_by="ops",
            comment="known",
        )
        db.commit()
    harness.seen(devices("a", 1), 100)
    harness.tick(200)  # a-1 now silent too: silenced, so no message
    harness.tick(260)
    assert len(bodies(receiver)) == 1
    harness.seen(devices("a", 0, 1, 2, 3, 4), 300)
    harness.tick(300)
    harness.tick(320)
    resolve = bodies(receiver)[-1]
    assert resolve["status"] == "resolved"
    # a-0 was announced and gets its resolve; a-1 was silenced all along and is never mentioned
    assert [a["labels"]["device"] for a in resolve["alerts"]] == devices("a", 0)


def test_silence_with_mute_resolved_holds_the_resolve(harness, receiver):
    harness.seen(devices("a", 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 10_000)
    harness.tick(100)
    harness.tick(130)
    with harness.state.session() as db:
        service.create_silence(
            db=db,
            now=harness.clock.now,
            matchers=['device="a-dev00000"'],
            ends_at=harness.clock.now + timedelta(hours=2),
            created_by="ops",
            mute_resolved=True,
        )
        db.commit()
    harness.seen(devices("a", 0, 1, 2, 3, 4), 200)
    harness.tick(200)
    harness.tick(260)
    assert len(bodies(receiver)) == 1
    with harness.state.session() as db:
        assert db.scalar(select(func.count()).select_from(AlertGroup)) == 0


def test_ack_stops_repeats_expires_and_still_resolves(harness, receiver):
    harness.seen(devices("a", 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 2000)
    harness.tick(100)
    harness.tick(130)
    (fp,) = [a.fingerprint for a in harness.alerts(state="firing")]
    with harness.state.session() as db:
        service.acknowledge(db=db, now=harness.clock.now, fingerprints=[fp], by="alice", ttl_s=1000)
        db.commit()
    harness.tick(140)  # the ack flushes the group at once: pagers hear "acknowledged"
    assert len(bodies(receiver)) == 2
    assert bodies(receiver)[1]["alerts"][0]["status"] == "firing"
    for at in range(200, 1140, 60):  # 130 + 600 would repeat, but the ack holds it
        harness.tick(at)
    assert len(bodies(receiver)) == 2
    assert harness.alerts(state="firing")[0].acknowledged_by == "alice"
    harness.tick(1200)  # ack lapsed at 1130: the reminder resumes by itself
    assert len(bodies(receiver)) == 3
    with harness.state.session() as db:
        service.acknowledge(db=db, now=harness.clock.now, fingerprints=[fp], by="bob", ttl_s=3600)
        db.commit()
    harness.seen(devices("a", 0), 1250)
    harness.tick(1260)
    harness.tick(1330)
    assert bodies(receiver)[-1]["status"] == "resolved"


def test_flapping_alert_notifies_once_not_per_flap(
    any_db, metrics, registry, clock, receiver, tmp_path
):
    config = rules_config(receiver.url, group_wait="0s", group_interval="10s", repeat_interval="4h")
    settings = make_settings(tmp_path, config, flap_threshold=4, flap_window_s=1800)
    with any_db.session() as db:
        seed_fleet(db, {"a": 5}, last_seen=T0)
    h = Harness(any_db, metrics, settings, registry, clock)
    others = devices("a", 1, 2, 3, 4)
    for step in range(14):
        at = 100 + step * 30
        h.seen(others, at)
        h.seen(devices("a", 0), at if step % 2 else at - 120)  # silent on even steps
        h.tick(at)
    assert len(bodies(receiver)) == 3  # fired, resolved, fired - then it was flapping
    (alert,) = h.alerts(rule="DeviceSilent")
    assert alert.state == "flapping"
    with any_db.session() as db:
        flips = db.scalar(select(func.count()).select_from(Alert).where(Alert.state == "flapping"))
        assert flips == 1
    for at in range(600, 2600, 60):  # steady (reporting) for longer than the window
        h.seen(others + devices("a", 0), at)
        h.tick(at)
    (alert,) = h.alerts(rule="DeviceSilent")
    assert alert.state == "resolved"
    assert len(bodies(receiver)) == 4 and bodies(receiver)[-1]["status"] == "resolved"


def test_escalation_pages_unacknowledged_groups_only(
    any_db, metrics, registry, clock, receiver, tmp_path
):
    config = rules_config(receiver.url, escalate_after="5m", escalate_to="pager")
    settings = make_settings(tmp_path, config)
    with any_db.session() as db:
        seed_fleet(db, {"a": 5, "b": 5}, last_seen=T0)
    h = Harness(any_db, metrics, settings, registry, clock)
    h.seen(devices("a", 1, 2, 3, 4) + devices("b", 1, 2, 3, 4), 5000)
    h.tick(100)  # a-0 and b-0 fire, one group per site
    h.tick(130)
    acked = [a.fingerprint for a in h.alerts(state="firing") if a.site == "b"]
    with any_db.session() as db:
        service.acknowledge(db=db, now=clock.now, fingerprints=acked, by="carol", ttl_s=7200)
        db.commit()
    for at in range(160, 520, 60):
        h.tick(at)
    pages = bodies(receiver, "/pager")
    assert len(pages) == 1
    assert pages[0]["groupLabels"] == {"alertname": "DeviceSilent", "site": "a"}


def test_announce_routes_like_any_alert_and_expires(harness, receiver):
    harness.seen(devices("a", 0, 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 10_000)
    with harness.state.session() as db:
        alert = service.announce(
            db=db,
            now=T0,
            title="Cordoned a-dev00003 ahead of thermal trip",
            labels={"alertname": "ActionTaken", "site": "a", "device": "a-dev00003"},
            severity="info",
            description="policy thermal-drain, dry-run off",
        )
        again = service.announce(
            db=db,
            now=T0,
            title="Cordoned a-dev00003 ahead of thermal trip",
            labels={"alertname": "ActionTaken", "site": "a", "device": "a-dev00003"},
            severity="info",
            description="policy thermal-drain, dry-run off",
        )
        assert again.id == alert.id
        db.commit()
    harness.tick(0)
    harness.tick(30)
    (msg,) = bodies(receiver)
    assert msg["groupLabels"] == {"alertname": "ActionTaken", "site": "a"}
    assert msg["alerts"][0]["annotations"]["summary"] == "Cordoned a-dev00003 ahead of thermal trip"
    ev, _ = harness.tick(3600)
    assert ev.events_expired == 1


def test_manual_resolve_holds_until_condition_clears(harness, receiver):
    harness.seen(devices("a", 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 5000)
    harness.tick(100)
    (fp,) = [a.fingerprint for a in harness.alerts(state="firing")]
    with harness.state.session() as db:
        service.resolve(db=db, now=harness.clock.now, fingerprints=[fp], by="dave")
        db.commit()
    harness.tick(200)
    assert harness.alerts(rule="DeviceSilent")[0].state == "resolved"
    harness.seen(devices("a", 0), 250)
    harness.tick(250)  # condition clears
    harness.tick(400)  # and returns: a new firing
    assert harness.alerts(rule="DeviceSilent")[0].state == "firing"


def test_restart_mid_group_loses_nothing(any_db, metrics, clock, receiver, tmp_path):
    """Every in-memory object is dropped between steps; only the database carries state."""
    settings = make_settings(tmp_path, rules_config(receiver.url))
    with any_db.session() as db:
        seed_fleet(db, {"a": 5}, last_seen=T0)
    others = devices("a", 1, 2, 3, 4)

    def process(state):  # a fresh process: new engine, registry and harness
        return Harness(
            state.reopen(),
            metrics,
            settings,
            PluginRegistry.from_entry_points(["fleetwatch.notifiers"]),
            clock,
        )

    h = process(any_db)
    h.seen(others, 5000)
    h.tick(100)  # fires; group created, waiting until 130
    del h
    h = process(any_db)
    h.tick(131)
    (first,) = bodies(receiver)
    assert first["alerts"][0]["labels"]["device"] == "a-dev00000"
    h.seen(devices("a", 0), 150)
    clock.now = T0 + timedelta(seconds=150)
    h.evaluate()  # resolved, and the process dies before dispatching
    del h
    h = process(any_db)
    clock.now = T0 + timedelta(seconds=200)
    with h.state.session() as db:  # it dies again between deciding and delivering
        dispatch_mod.plan(
            db, now=clock.now, settings=settings.alerting, config=load_config(settings.alerting)
        )
        db.commit()
    assert len(receiver.received) == 1
    del h
    h = process(any_db)
    h.dispatch()
    h.dispatch()  # idempotent: nothing is sent twice
    assert [b["status"] for b in bodies(receiver)] == ["firing", "resolved"]
    with h.state.session() as db:
        states = db.scalars(select(Notification.delivery_state)).all()
        assert states == ["sent", "sent"]
        assert db.scalar(select(func.count()).select_from(DeliveryAttempt)) == 2


def test_failed_delivery_is_logged_with_attempts(harness, receiver):
    receiver.script((503, {}), (503, {}), (503, {}), (503, {}))
    harness.seen(devices("a", 1, 2, 3, 4) + devices("b", 0, 1, 2, 3, 4), 5000)
    harness.tick(100)
    _, dp = harness.tick(130)
    assert dp.failed == 1
    with harness.state.session() as db:
        (note,) = service.list_notifications(db=db)
        log = service.deliveries(db=db, notification_ids=[note.id])[note.id]
    assert note.delivery_state == "failed" and note.attempts == 4
    assert [a.status_code for a in log] == [503] * 4
    assert all(a.latency_ms is not None and a.destination == receiver.url for a in log)


def test_failure_logs_name_the_host_never_the_secret_url(
    sqlite_db, metrics, registry, clock, receiver, tmp_path, caplog
):
    config = rules_config(receiver.url, group_wait="0s")
    config["receivers"][0] = {
        "name": "hook",
        "notifier": "slack",
        "config": {"webhook_url": f"{receiver.url}/services/T1/B2/TOKEN123"},
    }
    settings = make_settings(tmp_path, config)
    with sqlite_db.session() as db:
        seed_fleet(db, {"a": 5}, last_seen=T0)
    h = Harness(sqlite_db, metrics, settings, registry, clock)
    h.seen(devices("a", 1, 2, 3, 4), 5000)
    receiver.script((400, {}))
    with caplog.at_level("WARNING", logger="fleetwatch.alerting"):
        _, dp = h.tick(100)
    assert dp.failed == 1
    assert receiver.received[0].path == "/services/T1/B2/TOKEN123"
    assert "failed after 1 attempt(s): 400" in caplog.text and receiver.url in caplog.text
    assert "TOKEN123" not in caplog.text


def test_maintenance_window_mutes_its_site_only(
    any_db, metrics, registry, clock, receiver, tmp_path
):
    config = rules_config(receiver.url, group_wait="0s", repeat_interval="12h")
    config["inhibit_rules"] = []
    config["maintenance_windows"] = [
        {
            "name": "rack move",
            "sites": ["a"],
            "start": "2026-12-04T11:00:00Z",
            "end": "2026-12-04T13:00:00Z",
        }
    ]
    settings = make_settings(tmp_path, config)
    with any_db.session() as db:
        seed_fleet(db, {"a": 5, "b": 5}, last_seen=T0)
    h = Harness(any_db, metrics, settings, registry, clock)
    h.seen(devices("a", 1, 2, 3, 4) + devices("b", 1, 2, 3, 4), 50_000)
    h.tick(100)  # a-0 and b-0 silent; site a is in maintenance
    assert [b["groupLabels"]["site"] for b in bodies(receiver)] == ["b"]
    h.tick(2 * 3600 + 60)  # the window closed: a-0 is announced now
    assert [b["groupLabels"]["site"] for b in bodies(receiver)] == ["b", "a"]


def test_pending_alert_that_clears_is_dropped_without_a_word(
    any_db, metrics, registry, clock, receiver, tmp_path
):
    config = rules_config(receiver.url, group_wait="0s")
    config["rules"][1]["for"] = "5m"
    settings = make_settings(tmp_path, config)
    with any_db.session() as db:
        seed_fleet(db, {"a": 5}, last_seen=T0)
    h = Harness(any_db, metrics, settings, registry, clock)
    h.seen(devices("a", 1, 2, 3, 4), 50_000)
    ev, _ = h.tick(100)  # silent 100 s, active since 60 s: pending until 360 s
    assert ev.pending == 1 and ev.fired == 0
    assert [a.state for a in h.alerts()] == ["pending"]
    h.seen(devices("a", 0), 200)
    ev, _ = h.tick(200)
    assert ev.dropped == 1 and h.alerts() == [] and receiver.received == []
