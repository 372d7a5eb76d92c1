"""The dashboard's API client against the real API: answers, errors in words, missing routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.client import ApiError, FleetwatchClient, NotAvailable
from dashboards.pages import device, overview
from tests.dashboards.conftest import Fleet, free_port


@pytest.fixture()
def client(fleet: Fleet) -> FleetwatchClient:
    return FleetwatchClient(fleet.api_url, fleet.token, timeout_s=10)


def test_devices_and_sites(client: FleetwatchClient, fleet: Fleet) -> None:
    page = client.devices(limit=5)
    assert page["total"] == len(fleet.devices) and len(page["items"]) == 5
    assert {s["id"] for s in client.sites()} == set(fleet.sites)
    assert client.device(fleet.hot_device)["cohort"] == fleet.hot_cohort


def test_range_query_is_downsampled_to_the_asked_step(
    client: FleetwatchClient, fleet: Fleet
) -> None:
    got = client.series_range(
        device=fleet.hot_device,
        metric="temperature_celsius",
        start=fleet.now - timedelta(hours=6),
        end=fleet.now,
        step_s=300,
        labels={"sensor": "tj"},
    )
    assert len(got) == 1 and got[0]["labels"]["sensor"] == "tj"
    assert 70 <= len(got[0]["values"]) <= 73


def test_a_bad_token_is_an_error_in_words(fleet: Fleet) -> None:
    bad = FleetwatchClient(fleet.api_url, "fwt_0000000000000000_" + "x" * 43)
    with pytest.raises(ApiError) as caught:
        bad.devices()
    assert caught.value.status == 401 and "token" in str(caught.value)


def test_an_unknown_device_is_not_a_missing_route(client: FleetwatchClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.device("no-such-device")
    assert not isinstance(caught.value, NotAvailable)
    assert "not found" in str(caught.value)


def test_a_missing_route_is_not_available(fleet: Fleet) -> None:
    from dashboards import client as module

    client = FleetwatchClient(fleet.api_url, fleet.token)
    saved = module.ROUTES["sites"]
    module.ROUTES["sites"] = "/api/v1/no-such-route"
    try:
        with pytest.raises(NotAvailable):
            client.sites()
    finally:
        module.ROUTES["sites"] = saved


def test_an_unreachable_api_is_an_error_in_words() -> None:
    client = FleetwatchClient(f"http://127.0.0.1:{free_port()}", "t", timeout_s=2)
    with pytest.raises(ApiError, match="cannot reach the API"):
        client.sites()


def test_pages_build_without_tracebacks_when_the_api_is_down() -> None:
    client = FleetwatchClient(f"http://127.0.0.1:{free_port()}", "t", timeout_s=2)
    view = overview.build_overview(client)
    assert view.errors and all("cannot reach the API" in e for e in view.errors)
    page = device.build_device_page(client, "jetson-1", now=datetime.now(tz=UTC))
    assert page.errors and page.sentences == []


def test_overview_from_the_real_api(client: FleetwatchClient, fleet: Fleet) -> None:
    view = overview.build_overview(client)
    cells = [d for row in view.grid.data[0].customdata for d in row if d]
    assert sorted(cells) == sorted(fleet.devices)
    assert sum(view.counts.values()) == len(fleet.devices)
    if "analysis" in fleet.seeded:
        assert view.at_risk[0]["device_id"] == fleet.hot_device
