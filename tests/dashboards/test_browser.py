"""The dashboard in a real headless Chromium against the real API: every page loads without
console errors, filters change the grid, acknowledging goes through the API, the device page
draws its forecast band. Screenshots land in tests/artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashboards import figures, theme
from dashboards.app import create_dash_app
from dashboards.client import FleetwatchClient
from tests.dashboards.conftest import ARTIFACTS, Fleet, _DashServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_S = 30


def severe_logs(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def wait_for(driver: Any, condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        shot = ARTIFACTS / f"timeout-{what.replace(' ', '-')}.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"timed out waiting for {what} (screenshot {shot.name})") from None


def text_of(driver: Any, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def figure_data(driver: Any, graph_id: str) -> list[dict[str, Any]]:
    script = (
        "const el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return el && el.data ? JSON.parse(JSON.stringify(el.data)) : null;"
    )
    return driver.execute_script(script, f"#{graph_id}") or []


def figure_layout(driver: Any, graph_id: str) -> dict[str, Any]:
    script = (
        "const el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "const full = el && el._fullLayout;"
        "return full ? {paper_bgcolor: full.paper_bgcolor, uirevision: el.layout.uirevision} : {};"
    )
    return driver.execute_script(script, f"#{graph_id}") or {}


def grid_devices(driver: Any) -> list[str]:
    data = figure_data(driver, "ov-grid")
    heatmaps = [t for t in data if t.get("type") == "heatmap"]
    return [d for t in heatmaps for row in t.get("customdata", []) for d in row if d]


def open_page(driver: Any, url: str, ready: Any, what: str) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    wait_for(driver, ready, what)


def shoot(driver: Any, name: str) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, max(1000, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def test_overview_shows_every_device_and_counts(browser: Any, dash_url: str, fleet: Fleet) -> None:
    open_page(browser, dash_url + "/", lambda d: len(grid_devices(d)) > 0, "the fleet grid")
    devices = grid_devices(browser)
    assert sorted(devices) == sorted(fleet.devices)
    data = figure_data(browser, "ov-grid")
    assert [t["type"] for t in data] == ["heatmap"], "the fleet is one trace, not one per device"
    if "analysis" in fleet.seeded:
        wait_for(browser, lambda d: text_of(d, "#tile-critical .tile-count") == "1", "counts")
        risk_rows = text_of(browser, "#ov-risk-table")
        assert fleet.hot_device in risk_rows.splitlines()[1], "the riskiest device comes first"
        if fleet.has_route("/api/v1/health"):
            assert "trip point" in risk_rows, "the reason is said in words"
    shoot(browser, "overview")
    assert severe_logs(browser) == []


def test_state_filter_changes_the_grid_and_the_url(
    browser: Any, dash_url: str, fleet: Fleet
) -> None:
    assert "analysis" in fleet.seeded, "device health could not be seeded"
    open_page(browser, dash_url + "/", lambda d: len(grid_devices(d)) > 0, "the fleet grid")
    before = grid_devices(browser)
    box = browser.find_element(By.CSS_SELECTOR, "#ov-state input[value='critical']")
    box.click()
    wait_for(browser, lambda d: grid_devices(d) == [fleet.hot_device], "the filtered grid")
    assert len(before) == len(fleet.devices)
    assert "state=critical" in browser.current_url
    # The filter survives a reload: it lives in the URL.
    open_page(browser, browser.current_url, lambda d: grid_devices(d) == [fleet.hot_device],
              "the filtered grid after a reload")  # fmt: skip
    shoot(browser, "overview-filtered")
    assert severe_logs(browser) == []


def test_a_click_on_a_cell_opens_the_device(browser: Any, dash_url: str, fleet: Fleet) -> None:
    assert "analysis" in fleet.seeded, "device health could not be seeded"
    open_page(browser, dash_url + "/?state=critical",
              lambda d: grid_devices(d) == [fleet.hot_device], "the one critical cell")  # fmt: skip
    plot_area = browser.find_element(By.CSS_SELECTOR, "#ov-grid .nsewdrag")
    width = plot_area.size["width"]
    # The only cell is the first of MIN_GRID_COLUMNS columns; offsets count from the centre.
    offset = -width / 2 + width / (2 * figures.MIN_GRID_COLUMNS)
    ActionChains(browser).move_to_element_with_offset(plot_area, int(offset), 0).click().perform()
    wait_for(browser, lambda d: "/device/" in d.current_url, "the device page")
    assert browser.current_url.endswith(f"/device/{quote(fleet.hot_device, safe='')}")
    wait_for(browser, lambda d: fleet.hot_device in text_of(d, "#dv-header"), "its header")
    assert severe_logs(browser) == []


def test_site_in_the_url_filters_the_grid(browser: Any, dash_url: str, fleet: Fleet) -> None:
    site = fleet.sites[0]
    open_page(browser, f"{dash_url}/?site={quote(site)}",
              lambda d: 0 < len(grid_devices(d)) < len(fleet.devices), "the site's grid")  # fmt: skip
    rows = figure_data(browser, "ov-grid")[0]["y"]
    assert rows and all(row.startswith(f"{site} · ") for row in rows)
    assert severe_logs(browser) == []


def test_device_page_draws_series_forecast_band_and_time_to_limit(
    browser: Any, dash_url: str, fleet: Fleet
) -> None:
    url = f"{dash_url}/device/{quote(fleet.hot_device, safe='')}?range=6h"

    def series_drawn(d: Any) -> bool:
        return any(t.get("name") == "tj" for t in figure_data(d, "dv-series"))

    open_page(browser, url, series_drawn, "the device series")
    names = [t.get("name") for t in figure_data(browser, "dv-series")]
    tj = next(t for t in figure_data(browser, "dv-series") if t.get("name") == "tj")
    assert 300 <= len(tj["x"]) <= 2000, "a 6 h range is drawn downsampled"
    assert fleet.has_route("/api/v1/devices/{device_id}/forecasts")
    wait_for(browser, lambda d: "forecast interval" in
             [t.get("name") for t in figure_data(d, "dv-series")], "the forecast band")  # fmt: skip
    names = [t.get("name") for t in figure_data(browser, "dv-series")]
    band = next(t for t in figure_data(browser, "dv-series") if t["name"] == "forecast interval")
    assert band.get("fill") in ("toself", "tonexty")
    assert "forecast" in names
    sentence = text_of(browser, "#dv-forecasts")
    assert "tj reaches its 94.8 °C trip point in about 40 minutes (30–55)" in sentence
    shoot(browser, "device")
    assert severe_logs(browser) == []


def test_acknowledge_goes_through_the_api(browser: Any, dash_url: str, fleet: Fleet) -> None:
    assert fleet.has_route("/api/v1/alerts") and "alerting" in fleet.seeded
    open_page(browser, dash_url + "/alerts",
              lambda d: d.find_elements(By.CSS_SELECTOR, "button.ack"), "alert rows")  # fmt: skip
    fingerprint = fleet.alert_fingerprints[0]
    button = browser.find_element(
        By.XPATH, f"//button[contains(@id, '{fingerprint}') and contains(@class, 'ack')]"
    )
    button.click()
    wait_for(browser, lambda d: "acknowledged by" in text_of(d, "#al-table"), "acknowledgement")
    answer = fleet.get("/api/v1/alerts").json()
    rows = answer["items"] if isinstance(answer, dict) else answer
    acked = next(a for a in rows if a["fingerprint"] == fingerprint)
    assert acked.get("ack_expires_at"), "the API recorded the acknowledgement with an expiry"
    shoot(browser, "alerts")
    assert severe_logs(browser) == []


def test_approving_an_action_goes_through_the_api(
    browser: Any, dash_url: str, fleet: Fleet
) -> None:
    open_page(browser, dash_url + "/actions", lambda d: text_of(d, "#ac-pending"), "actions")
    shoot(browser, "actions")
    assert fleet.has_route("/api/v1/actions") and "actions" in fleet.seeded
    wait_for(browser, lambda d: fleet.hot_device in text_of(d, "#ac-pending"), "pending")
    assert "upgrades held until" in text_of(browser, "#ac-holds")
    assert "proposed" in text_of(browser, "#ac-audit")
    shoot(browser, "actions")
    action_id = fleet.action_ids[0]
    browser.find_element(By.ID, "ac-reason").send_keys("node is idle, drain now")
    browser.find_element(
        By.XPATH, f"//button[contains(@id, '\"action\":\"{action_id}\"') and text()='approve']"
    ).click()
    wait_for(browser, lambda d: f"action {action_id} approved" in text_of(d, "#ac-message"),
             "the approval")  # fmt: skip
    answer = fleet.get(f"/api/v1/actions/{action_id}").json()
    assert answer["state"] == "approved"
    wait_for(browser, lambda d: fleet.hot_device not in text_of(d, "#ac-pending"),
             "the pending list to empty")  # fmt: skip
    assert severe_logs(browser) == []


def test_theme_toggle_switches_to_dark_and_back(browser: Any, dash_url: str) -> None:
    dark_paper = theme.surface("dark")["paper"]
    open_page(browser, dash_url + "/", lambda d: len(grid_devices(d)) > 0, "the fleet grid")
    shell = browser.find_element(By.ID, "shell")
    start = shell.get_attribute("class")
    browser.find_element(By.ID, "theme-toggle").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "shell").get_attribute("class") != start,
             "the theme to change")  # fmt: skip
    assert browser.find_element(By.ID, "shell").get_attribute("class") == "theme-dark"
    wait_for(browser, lambda d: figure_layout(d, "ov-grid").get("paper_bgcolor") == dark_paper,
             "the grid to redraw in the dark theme")  # fmt: skip
    shoot(browser, "overview-dark")
    browser.find_element(By.ID, "theme-toggle").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "shell").get_attribute("class") == start,
             "the theme to change back")  # fmt: skip
    assert severe_logs(browser) == []


class CountingClient(FleetwatchClient):
    """The real client, counting device page refreshes (only that page asks for forecasts)."""

    refreshes = 0

    def forecasts(self, device_id: str) -> list[dict[str, Any]]:
        type(self).refreshes += 1
        return super().forecasts(device_id)


@pytest.fixture()
def fast_dash_url(fleet: Fleet) -> Iterator[str]:
    client = CountingClient(fleet.api_url, fleet.token)
    app = create_dash_app(fleet.api_url, fleet.token, refresh_s=1, client=client)
    server = _DashServer(app.server, free_port())
    server.start()
    yield f"http://127.0.0.1:{server.server.server_port}"
    server.stop()
    client.close()


@pytest.fixture()
def leave_page(browser: Any) -> Iterator[None]:
    """Stop the page before its server goes: a refreshing page must not outlive the server."""
    yield
    browser.get("about:blank")


def x_range(driver: Any, graph_id: str) -> list[Any]:
    script = (
        "const el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return el && el._fullLayout ? el._fullLayout.xaxis.range : null;"
    )
    return list(driver.execute_script(script, f"#{graph_id}") or [])


def x_autorange(driver: Any, graph_id: str) -> Any:
    script = (
        "const el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return el && el._fullLayout ? el._fullLayout.xaxis.autorange : null;"
    )
    return driver.execute_script(script, f"#{graph_id}")
