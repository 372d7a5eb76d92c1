"""Rule files, templates, matchers, routing and maintenance windows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetwatch.alerting.config import AlertingSettings
from fleetwatch.alerting.matchers import fingerprint, parse_duration, parse_matcher
from fleetwatch.alerting.routing import (
    InhibitRule,
    MaintenanceWindow,
    Route,
    compile_routes,
    group_key,
    group_labels,
    inhibited,
    match_routes,
)
from fleetwatch.alerting.rules import render
from fleetwatch.alerting.ruleset import RulesError, load_config, parse_config, read_file

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_default_rule_set_loads_and_covers_every_kind():
    config = load_config(AlertingSettings())
    kinds = {r.kind for r in config.rules}
    assert kinds == {
        "threshold",
        "anomaly",
        "peer_outlier",
        "forecast",
        "absence",
        "component_state",
        "deployment_status",
        "device_unhealthy",
        "restart_loop",
    }
    assert config.inhibit_rules[0].equal == ["site"]


def test_example_rules_file_in_docs_loads():
    config = parse_config(read_file(DOCS / "rules.example.yaml"), source="example")
    assert {r.name for r in config.receivers} >= {"slack-ops", "pagerduty-oncall"}
    assert config.maintenance_windows


def test_toml_rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rules]]\nname = "Hot"\nkind = "threshold"\nmetric = "temperature_celsius"\n'
        'threshold = 85\nfor = "5m"\n[route]\nreceiver = "default"\n'
        '[[receivers]]\nname = "default"\n'
    )
    config = load_config(AlertingSettings(rules_file=path))
    assert config.rules[0].for_s == 300 and config.rules[0].threshold == 85


def test_validation_error_names_rule_and_field():
    raw = {
        "rules": [
            {"name": "Fine", "kind": "absence", "silent_for": "5m"},
            {
                "name": "DiskFull",
                "kind": "threshold",
                "metric": "disk_used_ratio",
                "threshold": "lots",
            },
        ]
    }
    with pytest.raises(RulesError) as err:
        parse_config(raw, source="rules.yaml")
    message = str(err.value)
    assert "rule 'DiskFull' (rules[1]) field threshold" in message
    assert "rules.yaml" in message


def test_anomaly_and_peer_rules_above_the_score_range_are_refused():
    # Anomaly and peer scores are in [0, 1]: a rule asking for 6 or 4 could never fire.
    raw = {"rules": [{"name": "Anomalous", "kind": "anomaly", "min_score": 6, "for": "10m"}]}
    with pytest.raises(RulesError) as err:
        parse_config(raw, source="rules.yaml")
    assert "rule 'Anomalous' (rules[0]) field min_score" in str(err.value)
    raw["rules"][0]["min_score"] = 0.9
    assert parse_config(raw).rules[0].min_score == 0.9
    peer = {"rules": [{"name": "Peer", "kind": "peer_outlier", "min_score": 4}]}
    with pytest.raises(RulesError, match="rule 'Peer' .* field min_score"):
        parse_config(peer)


def test_unknown_kind_and_unknown_receiver_are_refused():
    with pytest.raises(RulesError, match="rule 'X'"):
        parse_config({"rules": [{"name": "X", "kind": "bogus"}]})
    with pytest.raises(RulesError, match="unknown receiver 'pager'"):
        parse_config({"route": {"receiver": "default", "routes": [{"receiver": "pager"}]}})


def test_templates_refuse_attribute_access():
    raw = {
        "rules": [
            {"name": "Evil", "kind": "absence", "silent_for": 60, "summary": "{device.__class__}"}
        ]
    }
    with pytest.raises(RulesError, match="not a plain name"):
        parse_config(raw)
    raw["rules"][0]["summary"] = "{device[0]}"
    with pytest.raises(RulesError, match="not a plain name"):
        parse_config(raw)


def test_render_formats_and_tolerates_missing_values():
    assert (
        render("{device} at {value:.1f} °C", {"device": "d1", "value": 91.234}) == "d1 at 91.2 °C"
    )
    assert render("{device} at {value:.1f}", {"device": "d1"}) == "d1 at "


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('site="ber-1"', {"site": "ber-1"}, True),
        ('site!="ber-1"', {"site": "ber-1"}, False),
        ('site=~"ber-.*"', {"site": "ber-12"}, True),
        ('site=~"ber"', {"site": "ber-12"}, False),  # anchored
        ('site!~"ber-.*"', {"site": "par-1"}, True),
        ('missing=""', {}, True),
        ('summary="say \\"hi\\""', {"summary": 'say "hi"'}, True),
    ],
)
def test_matchers(text, labels, expected):
    assert parse_matcher(text).matches(labels) is expected


def test_durations_and_fingerprints():
    assert (
        parse_duration("90s") == 90 and parse_duration("1h30m") == 5400 and parse_duration(15) == 15
    )
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_routing_tree_continue_and_inheritance():
    root = compile_routes(
        Route.model_validate(
            {
                "receiver": "default",
                "group_by": ["alertname", "site"],
                "group_wait": "30s",
                "routes": [
                    {
                        "matchers": ['severity="critical"'],
                        "receiver": "pager",
                        "continue": True,
                        "group_wait": "5s",
                    },
                    {"matchers": ['site=~"ber-.*"'], "receiver": "berlin", "group_by": ["site"]},
                    {"matchers": ['site=~"ber-.*"'], "receiver": "never"},
                ],
            }
        )
    )
    crit = {"alertname": "X", "severity": "critical", "site": "ber-1"}
    hit = match_routes(root, crit)
    assert [r.receiver for r in hit] == ["pager", "berlin"]
    assert hit[0].group_wait_s == 5 and hit[1].group_wait_s == 30
    assert group_labels(hit[1], crit) == {"site": "ber-1"}
    assert [r.receiver for r in match_routes(root, {"site": "par-1"})] == ["default"]
    assert group_key(hit[1], {"site": "ber-1"}) == '0.1:berlin:{"site":"ber-1"}'


def test_inhibition_needs_equal_labels_and_never_self_inhibits():
    rule = InhibitRule.model_validate(
        {
            "source_matchers": ['alertname="SiteUnreachable"'],
            "target_matchers": ['alertname=~"DeviceSilent|SiteUnreachable"'],
            "equal": ["site"],
        }
    )
    firing = {
        "site-a": {"alertname": "SiteUnreachable", "site": "a"},
        "dev-a": {"alertname": "DeviceSilent", "site": "a", "device": "d1"},
        "dev-b": {"alertname": "DeviceSilent", "site": "b", "device": "d2"},
    }
    assert inhibited([rule], firing) == {"dev-a"}


def test_maintenance_windows_weekly_across_midnight_and_one_off():
    weekly = MaintenanceWindow.model_validate(
        {
            "name": "patch",
            "sites": ["ber-1"],
            "weekdays": ["sat"],
            "at": "23:00",
            "duration": "3h",
            "timezone": "Europe/Berlin",
        }
    )
    sat_late = datetime(2026, 12, 5, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, Saturday
    sun_early = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # 01:30 Sunday, still inside
    after = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)
    assert weekly.mutes({"site": "ber-1"}, sat_late) and weekly.mutes({"site": "ber-1"}, sun_early)
    assert not weekly.mutes({"site": "ber-1"}, after)
    assert not weekly.mutes({"site": "par-1"}, sat_late)
    once = MaintenanceWindow.model_validate(
        {"name": "move", "start": "2026-12-04T10:00:00Z", "end": "2026-12-04T12:00:00Z"}
    )
    assert once.mutes({"site": "x"}, datetime(2026, 12, 4, 11, tzinfo=UTC))
    assert not once.mutes({"site": "x"}, datetime(2026, 12, 4, 12, tzinfo=UTC))
    with pytest.raises(ValueError):
        MaintenanceWindow.model_validate({"name": "bad", "weekdays": ["mon"]})
