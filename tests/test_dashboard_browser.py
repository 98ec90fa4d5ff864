"""The dashboard in a real headless Chromium against a real `esco-kpi serve` process.

Log in, open every page, change the period and a filter, drill down to a concept, download a
CSV and compare it with kpi.warehouse.indicators.query, and check that a label holding HTML shows as
text. Screenshots go to test-artifacts/. Without Chromium these tests skip locally and fail
in CI (where .ci/run installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboard.state import FilterState, csv_filename, today
from kpi.exports.csvfile import table_csv
from kpi.store.registry import add_implementer, add_user
from kpi.warehouse.aggregate import AggregationBusy, run_aggregation
from kpi.warehouse.indicators import Period, query
from tests.dashboard_world import HTML_LABEL, PASSWORD, seed_events
from tests.helpers import SKILL, event, post

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--window-size=1400,1000")
WAIT = 30


@contextlib.contextmanager
def chromium(downloads: Path) -> Iterator:
    """A headless Chromium (selenium driver) saving downloads to `downloads`; skips (fails in
    CI) without Chromium."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        message = (f"Chromium is not installed ({', '.join(missing)} missing): "
                   "apt-get install chromium chromium-driver")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    downloads.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(tmp_path) -> Iterator:
    with chromium(tmp_path / "downloads") as driver:
        yield driver


def aggregate(settings) -> None:
    """Aggregate now, waiting while the server's own schedule is running one."""
    deadline = time.monotonic() + 120
    while True:
        try:
            run_aggregation(settings)
            return
        except AggregationBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for(driver, condition, what: str, showing: Callable[[Any], str] | None = None):
    """Poll until `condition` holds; Dash re-renders often, so stale elements are retried.
    On a timeout the message says `what` was awaited and, with `showing`, what the page
    showed instead."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    # a grid still laying out its header holds elements that are there but not yet usable
    ignored = (NoSuchElementException, StaleElementReferenceException,
               ElementClickInterceptedException, ElementNotInteractableException)
    try:
        return WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(
            lambda d: condition(d), message=what)
    except TimeoutException as exc:
        if showing is None:
            raise
        try:
            shown = showing(driver)
        except WebDriverException as error:
            shown = f"(not readable: {error.__class__.__name__})"
        raise TimeoutException(f"{what}; the page showed {shown}") from exc


def click(driver, locate, what: str) -> None:
    """Find and click, again if Dash replaced the element in between."""
    wait_for(driver, lambda d: locate(d).click() or True, f"click {what}")


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def loaded(driver, title: str) -> None:
    """Wait until the page's title shows and no loading spinner is left."""
    from selenium.webdriver.common.by import By

    wait_for(driver, lambda d: any(e.text == title for e in
                                   d.find_elements(By.ID, "page-title")), f"page {title}")
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "._dash-loading, "
                                                   ".dash-spinner, [data-dash-is-loading]"),
             "loading to end")


def review_shown(driver) -> str:
    """What the Review page shows of a decision, for a failure's message: the status message,
    the selected rows' ids, the note, the start of the details panel, where the keyboard
    focus is, and whether the content is visible (a hidden element's text reads as empty to
    Selenium, so the texts here are the page's own)."""
    return str(driver.execute_script("""
        const text = id => { const e = document.getElementById(id);
                             return e ? e.textContent.trim().slice(0, 200) : null; };
        const note = document.getElementById("review-note");
        const rows = new Set([...document.querySelectorAll(
            "#review-grid .ag-row-selected")].map(r => r.getAttribute("row-id")));
        const content = document.getElementById("content");
        const focus = document.activeElement;
        return JSON.stringify({
            message: text("review-message"),
            selected: [...rows],
            note: note ? note.value : null,
            details: text("review-details"),
            focus: focus ? (focus.id || focus.tagName) : null,
            content: content ? getComputedStyle(content).visibility : null});"""))


def card(driver, key: str) -> str:
    from selenium.webdriver.common.by import By

    return by_id(driver, f"kpi-{key}").find_element(By.CLASS_NAME, "kpi-value").text


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(max(height, 1000), 6000))
    driver.save_screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))
    driver.set_window_size(1400, 1000)


def pick(driver, control: str, option: str) -> None:
    """Choose an option of a Dash dropdown, as a user does."""
    from selenium.webdriver.common.by import By

    click(driver, lambda d: by_id(d, f"f-{control}"), control)
    # (the options are radio buttons: dashboard/assets/a11y.js drops Dash's option roles)
    click(driver, lambda d: next(e for e in d.find_elements(By.CSS_SELECTOR,
                                                            ".dash-dropdown-content label")
                                 if e.text == option), option)


def usage(settings, period: Period, **filters) -> int:
    return sum(r["usage"] for r in query(settings, "language_usage", period, **filters).rows)


def test_dashboard_in_a_browser(browser, server_factory, settings, engine):
    from selenium.webdriver.common.by import By

    server = server_factory(schedule__aggregate_minutes=600)
    key_a = add_implementer(engine, "Portal Alpha", "DE", "job_portal")[1]
    key_b = add_implementer(engine, "Agency Beta", "FR", "pes")[1]
    add_user(engine, "esco", PASSWORD)

    def send(key: str, events: list[dict]) -> None:
        assert post(server.url, key, events).status_code == 202

    seed_events(send, key_a, key_b)
    # one use on the last day of last quarter: "last quarter" never holds today's uses
    last_quarter = Period.quarter(Period.quarter(today()).start - timedelta(days=1))
    send(key_b, [event("b9", concept_uri=SKILL, count=7,
                       occurred_at=last_quarter.end.isoformat())])
    aggregate(settings)
    url = server.url

    # 1. no session: the dashboard sends you to the login form
    browser.get(f"{url}/dashboard/")
    wait_for(browser, lambda d: "/login" in d.current_url, "redirect to /login")
    by_id(browser, "username").send_keys("esco")
    by_id(browser, "password").send_keys("wrong password")
    by_id(browser, "login-button").click()
    wait_for(browser, lambda d: "Wrong user name or password." in by_id(d, "login-message").text,
             "the failure message")
    by_id(browser, "username").clear()
    by_id(browser, "username").send_keys("esco")
    by_id(browser, "password").send_keys(PASSWORD)
    by_id(browser, "login-button").click()
    loaded(browser, "Overview")
    assert "ESCO v1.2.0, © European Union" in by_id(browser, "attribution").text

    # 2. the overview's figures, then another period, then a filter: the numbers follow
    last30 = FilterState().period()
    wait_for(browser, lambda d: card(d, "usage") == f"{usage(settings, last30):,}",
             "usage card for the last 30 days")
    shot(browser, "overview")
    click(browser, lambda d: d.find_element(By.CSS_SELECTOR,
                                            "#f-period input[value=last_quarter]"), "period")
    wait_for(browser, lambda d: "period=last_quarter" in d.current_url, "period in the URL")
    expected = usage(settings, last_quarter)
    assert expected != usage(settings, last30)
    wait_for(browser, lambda d: card(d, "usage") == f"{expected:,}", "usage, last quarter")
    click(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#f-period input[value=last30]"),
          "period")
    pick(browser, "country", "FR")
    wait_for(browser, lambda d: "country=FR" in d.current_url, "country in the URL")
    expected = usage(settings, last30, country="FR")
    wait_for(browser, lambda d: card(d, "usage") == f"{expected:,}", "usage in FR")

    # 3. a shared link restores the filters into the controls
    browser.get(f"{url}/dashboard/concepts?country=DE&period=last30")
    loaded(browser, "Concepts")
    wait_for(browser, lambda d: by_id(d, "f-country").text.strip() == "DE",
             "country control restored from the URL")
    shot(browser, "concepts")

    # 4. download the most used concepts as CSV: exactly kpi.warehouse.indicators.query's rows
    click(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, "#section-most-used-concepts .download-button"), "download")
    state = FilterState(country="DE")
    name = csv_filename("most_used_concepts", state)
    target = browser.downloads / name
    wait_for(browser, lambda _: target.exists() and target.stat().st_size > 0, "CSV download")
    result = query(settings, "most_used_concepts", state.period(), country="DE")
    assert target.read_text(encoding="utf-8") == table_csv(result.columns, result.rows)

    # 5. drill down: a click on a row of the most used concepts opens the concept
    click(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, "#section-most-used-concepts .ag-center-cols-container .ag-row "
        ".ag-cell"), "the first concept")
    loaded(browser, "Concept")
    assert "concept=" in browser.current_url and "country=DE" in browser.current_url
    assert by_id(browser, "concept-name").text == result.rows[0]["label"]
    shot(browser, "concept")

    # 6. every page opens from the menu; free text is shown as text, never as HTML
    for menu, title in (("labels", "Labels"), ("proposals", "Proposals"),
                        ("translations", "Translations"), ("uptake", "Uptake"),
                        ("quality", "Data quality"), ("overview", "Overview")):
        click(browser, lambda d, m=menu: by_id(d, f"menu-{m}"), menu)
        loaded(browser, title)
        shot(browser, menu)
        if menu == "labels":
            wait_for(browser, lambda d: any(e.text == HTML_LABEL for e in d.find_elements(
                By.CSS_SELECTOR, ".ag-cell")), "the HTML label as text")
            assert not browser.find_elements(By.CSS_SELECTOR, ".ag-cell b, .ag-cell script")
            # and Plotly, which reads <b> in axis labels, shows it literally too
            wait_for(browser, lambda d: any(HTML_LABEL in e.get_attribute("textContent")
                                            for e in d.find_elements(By.CSS_SELECTOR,
                                                                     ".ytick text")),
                     "the HTML label as text on the chart")

    # click-to-filter: a bar of the usage-by-language chart filters by that language
    from selenium.webdriver.common.action_chains import ActionChains

    # Plotly takes clicks on its drag layer above the bars: click where a bar is drawn
    wait_for(browser, lambda d: ActionChains(d).move_to_element(d.find_element(
        By.CSS_SELECTOR, "#section-usage-by-language .barlayer .point path")).click().perform()
        or True, "click a language bar")
    wait_for(browser, lambda d: "language=" in d.current_url, "language filter from a click")

    # 7. nothing on the way broke the content security policy
    problems = [e["message"] for e in browser.get_log("browser")
                if "Content Security Policy" in e["message"] or e["level"] == "SEVERE"]
    # (the wrong password at the start was answered 401, as it should)
    assert not [p for p in problems if "/login - Failed to load resource" not in p], problems

    # 8. log out: the dashboard is closed again
    click(browser, lambda d: by_id(d, "logout-button"), "log out")
    wait_for(browser, lambda d: d.current_url.endswith("/login"), "back at /login")
    browser.get(f"{url}/dashboard/uptake")
    wait_for(browser, lambda d: "/login" in d.current_url, "redirect after logout")
