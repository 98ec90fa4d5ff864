"""The dashboard against WCAG 2.1 AA, in a real headless Chromium.

axe-core (the axe.min.js bundled by the axe-playwright-python package, run here through
selenium) checks the login page, every dashboard page and the concept page in the states a
user reaches: a filter open or changed, a custom period, a data table under a chart opened, a
period without data, an unknown concept, an unknown page and a hand-edited URL. A keyboard-only
walk then uses the dashboard without a mouse: the skip link, a filter, a concept opened from a
table, a download, with a visible focus at every step. The Review page is checked as a
reviewer on a store with review items (tests/test_review.py's): axe-core with an item's
details open, and a row selected and accepted with the keyboard.

One Chromium and one dashboard (served from a thread) for the module, on the session's shared
`world`; the rising and falling sections, which `world` has no data for, are checked on a
second dashboard on `trend_world`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

import pytest
from sqlalchemy import delete
from werkzeug.serving import WSGIRequestHandler, make_server

from dashboard import auth
from dashboard.app import create_dashboard
from dashboard.state import FilterState, csv_filename
from kpi.store.registry import add_user
from tests import dashboard_world
from tests.dashboard_world import PASSWORD, TREND_PERIOD
from tests.helpers import SKILL
from tests.kpi_fixtures import Store, standard_store
from tests.test_dashboard_browser import by_id, chromium, click, loaded, wait_for

trend_world = dashboard_world.trend_world


def in_browser(test):
    """A test that drives Chromium, on the session's SQLite world."""
    return pytest.mark.browser(pytest.mark.parametrize("world", ["sqlite"], indirect=True)(test))


# WCAG 2.0 and 2.1, levels A and AA: what the accessibility statement claims.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_SOURCE = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}))),
        e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


class _QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, *args: Any) -> None:
        pass


@contextmanager
def serve(settings) -> Iterator[str]:
    """A dashboard on `settings`' store, served from a thread on a free port."""
    server = make_server("127.0.0.1", 0, create_dashboard(settings), threaded=True,
                         request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def site(world) -> Iterator[str]:
    """The dashboard on the shared world."""
    with serve(world.settings) as url:
        yield url
    with world.engine.begin() as conn:
        conn.execute(delete(auth.login_failures))
        conn.execute(delete(auth.sessions))


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory) -> Iterator:
    """One Chromium for the module."""
    with chromium(tmp_path_factory.mktemp("a11y-downloads")) as driver:
        driver.set_script_timeout(60)
        yield driver


def axe(driver) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now."""
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(AXE_SOURCE)
    return driver.execute_async_script(AXE_RUN, AXE_TAGS)


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    """The violations per state: rule, impact and help, then each element's selector."""
    lines = []
    for state, violations in found.items():
        for v in violations:
            lines.append(f"{state}: {v['id']} ({v['impact']}): {v['help']}")
            lines += [f"    {n['target']}: {(n['summary'] or '').splitlines()[-1].strip()}"
                      for n in v["nodes"][:8]]
    return "\n".join(lines)


def log_in(driver, site: str, then: str = "Overview") -> None:
    driver.get(f"{site}/login")
    by_id(driver, "username").send_keys("esco")
    by_id(driver, "password").send_keys(PASSWORD)
    by_id(driver, "login-button").click()
    loaded(driver, then)


def goto(driver, path: str, title: str) -> None:
    """Open a dashboard URL as a dcc.Link does (no reload: Dash's scripts stay, and axe with
    them). The page before must have had another title, which is what tells the new one."""
    driver.execute_script("window.history.pushState({}, '', arguments[0]);"
                          "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));",
                          path)
    loaded(driver, title)


def open_tables(driver) -> None:
    """Open every chart's data table."""
    from selenium.webdriver.common.by import By

    for summary in driver.find_elements(By.CSS_SELECTOR, ".chart-data summary"):
        summary.click()


@in_browser
def test_no_axe_violation_on_any_page_in_any_state(site, browser):
    from selenium.webdriver.common.by import By

    found: dict[str, list] = {}

    def check(state: str) -> None:
        violations = axe(browser)
        if violations:
            found[state] = violations

    browser.delete_all_cookies()
    browser.get(f"{site}/login")
    check("login")
    by_id(browser, "username").send_keys("esco")
    by_id(browser, "password").send_keys("wrong")
    by_id(browser, "login-button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "login-message"), "the failure message")
    check("login, wrong password")
    browser.get(f"{site}/accessibility")
    assert "WCAG 2.1 level AA" in by_id(browser, "statement").text
    check("accessibility statement")

    # every page from the menu, each with its charts' data tables open (what a closed one
    # hides is checked too)
    log_in(browser, site)
    open_tables(browser)
    check("Overview")
    for menu, title in (("concepts", "Concepts"), ("collections", "Collections"),
                        ("labels", "Labels"), ("proposals", "Proposals"),
                        ("translations", "Translations"), ("uptake", "Uptake"),
                        ("quality", "Data quality")):
        click(browser, lambda d, m=menu: by_id(d, f"menu-{m}"), menu)
        loaded(browser, title)
        open_tables(browser)
        check(title)
    goto(browser, f"/dashboard/concept?concept={SKILL}", "Concept")
    open_tables(browser)
    check("Concept")

    # a period without data, and the error pages: an unknown concept, a hand-edited URL, a
    # concept page without a concept (each title differs from the one before: see goto)
    empty = "period=custom&start=2020-01-01&end=2020-01-31"
    for path, title, state in (
            (f"/dashboard/?{empty}", "Overview", "Overview, no data"),
            (f"/dashboard/concepts?{empty}", "Concepts", "Concepts, no data"),
            ("/dashboard/concept?concept=http://data.europa.eu/esco/skill/00000000-0000-"
             "0000-0000-000000000000", "Concept", "unknown concept"),
            ("/dashboard/labels?period=nonsense&country=%3Cb%3E&language=xx", "Labels",
             "hand-edited URL"),
            ("/dashboard/concept", "Concept", "concept page without a concept")):
        goto(browser, path, title)
        check(state)

    # a filter list open, then a filter changed; the custom period; a sorted grid
    goto(browser, "/dashboard/proposals", "Proposals")
    by_id(browser, "f-country").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content"),
             "the country list open")
    check("country filter open")
    wait_for(browser, lambda d: next(e for e in d.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-content label") if e.text == "FR").click() or True,
        "choose FR")
    wait_for(browser, lambda d: "country=FR" in d.current_url, "country in the URL")
    browser.find_element(By.CSS_SELECTOR, "#f-period input[value=custom]").click()
    wait_for(browser, lambda d: by_id(d, "f-start").is_displayed(), "the date fields")
    wait_for(browser, lambda d: "period=custom" in d.current_url, "period in the URL")
    loaded(browser, "Proposals")

    def sorted_by_label(d) -> bool:
        # clicked until ascending: the page re-rendered for the new period may replace the
        # grid just after a click (the title is the same before and after, so `loaded` cannot
        # tell), and a header cycles none -> ascending -> descending
        header = d.find_element(By.CSS_SELECTOR, ".ag-header-cell[col-id=label]")
        if header.get_attribute("aria-sort") == "ascending":
            return True
        header.click()
        return False

    wait_for(browser, sorted_by_label, "sorted by label")
    check("country FR, custom period, grid sorted")

    goto_unknown = "window.history.pushState({}, '', '/dashboard/nowhere');" \
        "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));"
    browser.execute_script(goto_unknown)
    wait_for(browser, lambda d: "No such page." in by_id(d, "content").text, "the unknown page")
    check("unknown page")
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + report(found)


@in_browser
def test_no_axe_violation_with_rising_and_falling_items(browser, trend_world):
    """The trend sections with rows, which the shared world has none of: the Overview (every
    kind; the slope charts with their data tables open). Their states without rows are the
    shared world's, checked above."""
    with serve(trend_world.settings) as trend_site:
        browser.delete_all_cookies()
        # the login form leads back to the page asked for
        browser.get(f"{trend_site}/dashboard/{TREND_PERIOD}")
        by_id(browser, "username").send_keys("esco")
        by_id(browser, "password").send_keys(PASSWORD)
        by_id(browser, "login-button").click()
        loaded(browser, "Overview")
        wait_for(browser, lambda d: by_id(d, "chart-trends-falling"), "the trends")
        open_tables(browser)
        violations = axe(browser)
        browser.delete_all_cookies()
    assert not violations, ("axe-core found WCAG 2.1 A/AA violations:\n"
                            + report({"Overview, trends": violations}))


FOCUS = """
const e = document.activeElement, s = getComputedStyle(e), last = window.__walkLast;
window.__walkLast = e;
return {tag: e.tagName, id: e.id, text: (e.textContent || '').trim().slice(0, 60),
        cls: String(e.className),
        visible: e !== document.body && ((s.outlineStyle !== 'none' &&
                 parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'),
        order: !last || !last.isConnected ? null : last === e ? 0 :
               (last.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING ? 1 : -1)};
"""


def press(driver, *keys: str, shift: bool = False) -> dict[str, Any]:
    """Press keys (no mouse), with Shift held if `shift`; where the focus is now, whether it
    shows, and which way it moved (1 forward in the document, -1 back, 0 not at all, None
    when the element before is gone)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    actions = ActionChains(driver)
    if shift:
        actions.key_down(Keys.SHIFT).send_keys(*keys).key_up(Keys.SHIFT)
    else:
        actions.send_keys(*keys)
    actions.perform()
    return driver.execute_script(FOCUS)


def tab_until(driver, arrived, what: str, back: bool = False, limit: int = 60
              ) -> dict[str, Any]:
    """Tab (Shift+Tab with `back`) until `arrived(focus)`; every step must show the focus
    and move on in document order."""
    from selenium.webdriver.common.keys import Keys

    for _ in range(limit):
        focus = press(driver, Keys.TAB, shift=back)
        assert focus["visible"], f"focus not visible on the way to {what}: {focus}"
        assert focus["order"] in (None, -1 if back else 1), f"Tab did not move on: {focus}"
        if arrived(focus):
            return focus
    raise AssertionError(f"{what} not reached with {limit} presses of Tab")


@in_browser
def test_keyboard_only(site, browser):
    """Log in, skip to the content, change the period and a filter, download a CSV, open a
    concept from a grid and walk off the page's end: keys only, focus visible throughout."""
    from selenium.webdriver.common.keys import Keys

    browser.delete_all_cookies()
    browser.get(f"{site}/dashboard/concepts")
    wait_for(browser, lambda d: "/login" in d.current_url, "the login form")
    press(browser, "esco", Keys.TAB, PASSWORD, Keys.ENTER)  # the user name has the focus
    loaded(browser, "Concepts")
    browser.execute_script("window.__walkLast = null")

    # the skip link comes first and moves the focus to the content
    focus = press(browser, Keys.TAB)
    assert focus["id"] == "skip-link" and focus["visible"], focus
    focus = press(browser, Keys.ENTER)
    assert focus["id"] == "content", focus
    focus = press(browser, Keys.TAB)
    assert focus["cls"] == "download-button" and focus["visible"], focus

    # back to the filters: the country list opens with Enter, takes a search and the arrows
    tab_until(browser, lambda f: f["id"] == "f-country", "the country filter", back=True)
    press(browser, Keys.ENTER)
    # keys typed before the list has opened would go to its trigger (a loaded machine)
    searching = "return document.activeElement.classList.contains('dash-dropdown-search')"
    wait_for(browser, lambda d: d.execute_script(searching), "the country list's search field")
    press(browser, "FR")
    wait_for(browser, lambda d: d.execute_script("return document.activeElement.value") == "FR",
             "FR in the search field")
    focus = press(browser, Keys.ARROW_DOWN)
    assert focus["visible"], focus
    press(browser, Keys.ENTER)
    wait_for(browser, lambda d: "country=FR" in d.current_url, "country=FR in the URL")
    # the list closes and hands the focus back to its trigger a frame later
    wait_for(browser, lambda d: d.execute_script("return document.activeElement.id")
             == "f-country", "the focus back on the country filter")
    loaded(browser, "Concepts")
    # the walk goes on from there (what the Enter press saw may be the page, in between)
    browser.execute_script("window.__walkLast = document.activeElement")
    # the period's radio buttons: the arrow keys change it
    tab_until(browser, lambda f: f["tag"] == "INPUT" and "checkbox" in f["cls"], "the period",
              back=True)
    press(browser, Keys.ARROW_RIGHT)
    wait_for(browser, lambda d: "period=this_quarter" in d.current_url, "this quarter")
    press(browser, Keys.ARROW_LEFT)
    wait_for(browser, lambda d: "period=" not in d.current_url, "the last 30 days again")
    loaded(browser, "Concepts")

    # a download, then a concept opened from the grid (Enter on a header sorts it)
    browser.execute_script("window.__walkLast = document.activeElement")
    tab_until(browser, lambda f: f["cls"] == "download-button", "a download button")
    press(browser, Keys.ENTER)
    target = browser.downloads / csv_filename("most_used_concepts", FilterState(country="FR"))
    wait_for(browser, lambda _: target.exists() and target.stat().st_size > 0, "the CSV")
    focus = tab_until(browser, lambda f: "ag-header-cell" in f["cls"], "the grid")
    press(browser, Keys.ENTER)
    wait_for(browser, lambda d: d.execute_script(
        "return document.activeElement.getAttribute('aria-sort')") == "ascending", "sorted")
    focus = press(browser, Keys.ARROW_DOWN)
    assert "ag-cell" in focus["cls"] and focus["visible"], focus
    press(browser, Keys.SPACE)
    loaded(browser, "Concept")
    assert "concept=" in browser.current_url and "country=FR" in browser.current_url

    # no trap: Tab goes through the whole concept page, data tables and links included
    browser.execute_script("window.__walkLast = null; document.activeElement.blur()")
    tab_until(browser, lambda f: f["id"] == "accessibility-link", "the page's end", limit=80)


def contrast(a: str, b: str) -> float:
    """WCAG 2.1's contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_chart_colours_reach_3_to_1_on_white():
    """Bars and lines are drawn in the palette's first colours (WCAG 1.4.11)."""
    from dashboard.components import GRAPHIC_COLOURS, PALETTE

    assert [c for c in PALETTE[:GRAPHIC_COLOURS] if contrast(c, "#ffffff") < 3] == []
    # what the charts draw: the bars, this period's and the previous period's lines
    assert contrast(PALETTE[0], "#ffffff") >= 3 and contrast(PALETTE[1], "#ffffff") >= 3
    # the focus ring against white and the page's grey, and white on the header
    assert contrast("#003f73", "#ffffff") >= 3 and contrast("#003f73", "#f4f6f8") >= 3
    assert contrast("#ffffff", "#003f73") >= 4.5


def test_chart_summaries_state_what_the_chart_shows():
    from datetime import date

    from dashboard.components import NO_DATA, describe

    assert describe(("concept", "usage"), [("welding", 12), ("plumbing", 3), ("sewing", 1)],
                    "concepts") == ("3 concepts. Highest usage: welding (12); lowest: "
                                    "sewing (1).")
    assert describe(("language", "events"), [("de", 4)], "languages") == \
        "1 language: de, events 4."
    days = [(date(2026, 1, 1), 2, None), (date(2026, 1, 2), 5, 1)]
    assert describe(("day", "usage this period", "usage previous period"), days) == (
        "2 days from 01 Jan 2026 to 02 Jan 2026; total usage this period 7; highest on "
        "02 Jan 2026 (5).")
    assert describe(("outcome", "reason", "events"), [("rejected", "unknown_language", 3)],
                    "reasons") == "1 reason: rejected, unknown_language, events 3."
    assert describe(("a", "b"), []) == NO_DATA + "."


def test_chart_links_lead_where_a_click_on_the_bar_does():
    from dashboard.callbacks import click_href
    from dashboard.state import target_href, to_query

    state = FilterState(preset="last_quarter", country="DE")
    for target in (SKILL, "language=fr", "country=FR", "sector=pes"):
        assert target_href(state, "uptake", target) == click_href(
            "/dashboard/uptake", to_query(state), target)
    assert target_href(state, "uptake", "javascript:alert(1)") is None
    assert target_href(state, "uptake", "language=xx") is None


@pytest.fixture(scope="module")
def review_store(tmp_path_factory) -> Iterator[Store]:
    """tests/test_review.py's seeded store with a reviewer (the shared world's user is a
    viewer, and a decision would change what the shared world holds)."""
    from tests.test_review import seed

    store = standard_store(tmp_path_factory.mktemp("review-a11y"))
    try:
        seed(store)
        add_user(store.engine, "eva", PASSWORD, role="reviewer")
        yield store
    finally:
        store.engine.dispose()


@in_browser
def test_review_page_as_a_reviewer_with_the_keyboard(browser, review_store):
    """The Review page as a reviewer: no axe violation with its items, with an item's details
    open and after a decision; a row selected with the keyboard (arrow keys, Space) and
    accepted with the keyboard, the status message saying so."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    found: dict[str, list] = {}

    def check(state: str) -> None:
        violations = axe(browser)
        if violations:
            found[state] = violations

    with serve(review_store.settings) as review_site:
        browser.delete_all_cookies()
        browser.get(f"{review_site}/dashboard/review")
        wait_for(browser, lambda d: "/login" in d.current_url, "the login form")
        press(browser, "eva", Keys.TAB, PASSWORD, Keys.ENTER)
        loaded(browser, "Review")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#review-grid .ag-row"),
                 "the items")
        check("Review, reviewer")

        # the skip link to the content, into the grid, down to the first row, Space selects it
        browser.execute_script("window.__walkLast = null")
        focus = press(browser, Keys.TAB)
        assert focus["id"] == "skip-link", focus
        assert press(browser, Keys.ENTER)["id"] == "content"
        tab_until(browser, lambda f: "ag-header-cell" in f["cls"], "the grid")
        focus = press(browser, Keys.ARROW_DOWN)
        assert "ag-cell" in focus["cls"] and focus["visible"], focus
        press(browser, Keys.SPACE)
        wait_for(browser, lambda d: "History" in by_id(d, "review-details").text,
                 "the details")
        check("Review, details open")

        # on to the Accept button, Enter decides
        focus = tab_until(browser, lambda f: f["id"] == "review-accept", "the Accept button")
        press(browser, Keys.ENTER)
        wait_for(browser, lambda d: by_id(d, "review-message").text == "1 item accepted.",
                 "the status message")
        assert by_id(browser, "review-message").get_attribute("role") == "status"
        check("Review, after a decision")

        # one item opened by a link: its details (spellings, months) at once
        from tests.test_review import L_ID

        browser.get(f"{review_site}/dashboard/review?item={L_ID}")
        wait_for(browser, lambda d: d.find_elements(By.ID, "review-spellings"),
                 "the item's spellings")
        check("Review, one item by link")
        browser.delete_all_cookies()
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + report(found)
