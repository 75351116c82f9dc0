"""The dashboard at ``GET /dashboard`` in a real headless browser (Debian's chromium, driven
by selenium through /usr/bin/chromedriver; ``make test`` installs both when missing).

A gateway with two operators at the bundled simulator (B fails every message with an
undeliverable receipt, A fails the numbers under one prefix), a few messages sent over
HTTP until their receipts are in, then the page as a tenant uses it: it loads, the tenant
signs in with a token, chooses a period, and the figures shown (totals, errors by code, top
failing operators and countries) are the ones ``GET /v1/analytics`` answers for that same
period; the four charts are drawn (uPlot, served by the gateway). The token is never in a
URL, the browser console has no error (nothing blocked, nothing from another host), and a
screenshot is saved under the test's tmp_path (its path printed). The browser is always
quit; every wait is bounded (WebDriverWait). A wrong token stays on the sign-in form; without
the charting library (a gateway installed without npm) the figures still show, with a note.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from config import RouteConfig
from config.simulator import FaultRule
from smsc.http import dashboard
from smsc.http.dashboard import VENDOR_DIR, vendor_installed
from tests.httpkit import api_client, api_tenant, message_body, post_json, wait_message_status
from tests.integration.e2e_support import Stack, operator

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not (os.access("/usr/bin/chromium", os.X_OK)
                            and os.access("/usr/bin/chromedriver", os.X_OK)),
                       reason="needs Debian's chromium and chromium-driver (make test "
                              "installs them: apt-get install -y chromium chromium-driver)"),
    pytest.mark.skipif(not vendor_installed(),
                       reason=f"the charting library is not installed in {VENDOR_DIR} "
                              "(make test runs npm ci --prefix web)"),
]

TOKEN = "tok_dash_0123456789abcdef0123456789abcdef"
WAIT_S = 20.0
# Chromium as this machine runs it headless (no sandbox as root, no background traffic to
# hosts the closed network refuses).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1700")
TILES = {  # element id on the page -> field of the analytics answer's totals
    "total-submitted": "submitted", "total-delivered": "delivered", "total-failed": "failed",
    "total-delivery-rate": "delivery_rate", "total-parts": "parts", "total-clicks": "clicks",
    "total-click-rate": "click_through_rate", "total-opt-outs": "opt_outs",
    "total-inbound": "inbound",
}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.set_page_load_timeout(WAIT_S)
        driver.set_script_timeout(WAIT_S)
        yield driver
    finally:
        driver.quit()


def _send(client: httpx.Client, numbers: list[str], want: str) -> None:
    r = post_json(client, message_body(numbers, "dashboard", originator="ACME"))
    assert r.status_code == 200, r.text
    for m in r.json()["messages"]:
        assert m["status"] == "accepted", m
        wait_message_status(client, m["id"], want, timeout=WAIT_S)


def _analytics(client: httpx.Client, since: str, until: str, group_by: str
               ) -> dict[str, Any]:
    r = client.get("/v1/analytics", params={"since": since, "until": until,
                                            "group_by": group_by})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _value(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).get_attribute("data-value"))


def _shown(expected: object) -> str:
    """A figure as the page keeps it in data-value (JavaScript's String(n))."""
    if expected is None:
        return ""
    if isinstance(expected, float) and expected.is_integer():
        return str(int(expected))
    return str(expected)


def _rows(driver: webdriver.Chrome, table: str) -> list[tuple[str, str]]:
    """(key, first figure) of each row of one of the page's tables."""
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-key]")
    return [(str(r.get_attribute("data-key")),
             str(r.find_elements(By.CSS_SELECTOR, "td[data-value]")[0]
                 .get_attribute("data-value"))) for r in rows]


def _top_failing(answer: dict[str, Any]) -> list[tuple[str, str]]:
    groups = [g for g in answer["groups"] if g["failed"] > 0]
    groups.sort(key=lambda g: (-g["failed"], str(g["key"])))
    return [(str(g["key"]), str(g["failed"])) for g in groups[:5]]


def test_dashboard_signs_in_and_shows_what_the_api_answers(
        stack: Stack, browser: webdriver.Chrome, tmp_path: Path) -> None:
    sim_a = stack.sim(rules=(FaultRule(prefix="4477009", fault="undeliverable", err=11),))
    sim_b = stack.sim(rules=(FaultRule(prefix="1", fault="undeliverable", err=34),))
    gw = stack.gateway(
        [operator("A", sim_a.port), operator("B", sim_b.port)],
        tenants=(api_tenant("dash", TOKEN),),
        routes=(RouteConfig(prefix="1", operators=("B",)),
                RouteConfig(prefix="", operators=("A",))))
    base = f"http://127.0.0.1:{gw.gateway.http_port}"
    with api_client(gw.gateway.http_port, TOKEN) as client:
        _send(client, ["+447700100001", "+447700100002", "+447700100003"], "delivered")
        _send(client, ["+447700900001", "+447700900002"], "undeliverable")
        _send(client, ["+12025550101"], "undeliverable")

        browser.get(base + "/dashboard")
        wait = WebDriverWait(browser, WAIT_S)
        token_box = wait.until(lambda d: d.find_element(By.ID, "token"))
        assert token_box.is_displayed()
        assert not browser.find_element(By.ID, "board").is_displayed()
        token_box.send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in-button").click()
        board = browser.find_element(By.ID, "board")
        wait.until(lambda d: board.get_attribute("data-state") == "loaded")
        assert not browser.find_element(By.ID, "sign-in").is_displayed()

        # The period: the last 7 days, over time by day (what a person picks in the form).
        Select(browser.find_element(By.ID, "preset")).select_by_visible_text("Last 7 days")
        wait.until(lambda d: board.get_attribute("data-state") == "loaded"
                   and board.get_attribute("data-group-by") == "day")
        since = str(board.get_attribute("data-since"))
        until = str(board.get_attribute("data-until"))

        over_time = _analytics(client, since, until, "day")
        by_operator = _analytics(client, since, until, "operator")
        by_country = _analytics(client, since, until, "country")

    totals = over_time["totals"]
    assert (totals["submitted"], totals["delivered"], totals["failed"]) == (6, 3, 3), totals
    for element_id, field in TILES.items():
        assert _value(browser, element_id) == _shown(totals.get(field)), element_id
    assert _value(browser, "total-latency-p50") == _shown(totals["latency_p50_ms"])
    assert _value(browser, "total-latency-p95") == _shown(totals["latency_p95_ms"])
    assert browser.find_element(By.ID, "total-submitted").text == "6"

    errors = sorted(((str(k), str(v)) for k, v in totals["errors"].items()),
                    key=lambda kv: (-int(kv[1]), kv[0]))
    assert _rows(browser, "errors") == errors
    assert _rows(browser, "operators") == _top_failing(by_operator) == [("A", "2"), ("B", "1")]
    assert _rows(browser, "countries") == _top_failing(by_country)
    assert dict(_rows(browser, "countries")) == {"GB": "2", "US": "1"}

    # The charts are drawn: uPlot came from the gateway, nothing was refused or failed.
    assert len(browser.find_elements(By.CSS_SELECTOR, ".chart canvas")) == 4
    assert not browser.find_element(By.ID, "charts-missing").is_displayed()
    try:
        console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    except WebDriverException:  # pragma: no cover - a driver without the log endpoint
        console = []
    assert [e for e in console if e.get("level") == "SEVERE"] == []
    assert TOKEN not in browser.current_url

    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    print(f"dashboard screenshot: {shot}")

    # A custom period, by hour: the two hours either side of now (the hour may turn while
    # the test runs), typed into the form's fields and shown with the button.
    hour = int(time.time()) // 3600 * 3600
    custom = [datetime.fromtimestamp(hour + d, UTC).strftime("%Y-%m-%dT%H:%M")
              for d in (-7200, 7200)]
    for element_id, value in zip(("since", "until"), custom, strict=True):
        browser.execute_script(
            "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
            "el.dispatchEvent(new Event('input', {bubbles: true}));", element_id, value)
    assert Select(browser.find_element(By.ID, "preset")).first_selected_option.text == "Custom"
    Select(browser.find_element(By.ID, "step")).select_by_visible_text("hour")
    browser.find_element(By.ID, "show").click()
    wait.until(lambda d: board.get_attribute("data-state") == "loaded"
               and board.get_attribute("data-since") == custom[0] + ":00Z")
    assert board.get_attribute("data-until") == custom[1] + ":00Z"
    assert board.get_attribute("data-group-by") == "hour"
    with api_client(gw.gateway.http_port, TOKEN) as client:
        hourly = _analytics(client, custom[0] + ":00Z", custom[1] + ":00Z", "hour")["totals"]
    assert (hourly["submitted"], hourly["failed"]) == (6, 3)
    for element_id, field in TILES.items():
        assert _value(browser, element_id) == _shown(hourly.get(field)), element_id

    # Signing out forgets the token (sessionStorage) and shows the sign-in form again.
    browser.find_element(By.ID, "sign-out").click()
    wait.until(lambda d: d.find_element(By.ID, "token").is_displayed())
    assert browser.execute_script(
        "return sessionStorage.getItem('smsc.dashboard.token')") is None


def test_dashboard_refuses_a_wrong_token(stack: Stack, browser: webdriver.Chrome) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(api_tenant("dash", TOKEN),))
    browser.get(f"http://127.0.0.1:{gw.gateway.http_port}/dashboard")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.find_element(By.ID, "token")).send_keys("tok_wrong_" + "0" * 30)
    browser.find_element(By.ID, "sign-in-button").click()
    error = browser.find_element(By.ID, "sign-in-error")
    wait.until(lambda d: "Sign-in failed" in error.text)
    assert not browser.find_element(By.ID, "board").is_displayed()
    assert browser.execute_script(
        "return sessionStorage.getItem('smsc.dashboard.token')") is None


def test_dashboard_without_the_charting_library_still_shows_the_figures(
        stack: Stack, browser: webdriver.Chrome, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a gateway installed without npm: the uPlot asset answers 404.
    monkeypatch.setitem(dashboard._ASSETS, "uPlot.iife.min.js",
                        (tmp_path / "not-installed.js", "text/javascript"))
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(api_tenant("dash", TOKEN),))
    with api_client(gw.gateway.http_port, TOKEN) as client:
        _send(client, ["+447700100001"], "delivered")
    browser.get(f"http://127.0.0.1:{gw.gateway.http_port}/dashboard")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.find_element(By.ID, "token")).send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in-button").click()
    board = browser.find_element(By.ID, "board")
    wait.until(lambda d: board.get_attribute("data-state") == "loaded")
    assert browser.find_element(By.ID, "charts-missing").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, ".chart canvas") == []
    assert browser.find_element(By.ID, "total-submitted").text == "1"
    assert browser.find_element(By.ID, "total-delivered").text == "1"
