"""The page of `nsscale serve` in a real browser: Debian's chromium driven by Playwright, against a
real `nsscale serve` process, the real kubectl and the local API server.

One server and one browser for the module (its tests run on one xdist worker); each test its own
browser context (a fresh tab: no token kept), whose every request and console message is
recorded: a request to any other host than the server, a page error or a Content-Security-Policy
violation fails the test. A missing browser fails every test, naming the apt command (never a
skip)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from nsscale.serve import web
from nsscale.serve.web import CONTENT_SECURITY_POLICY
from tests.apiserver.server import ApiServer
from tests.browser import FLEET, launch, seed_fleet
from tests.faultkit import nsscale_env, observe, scaled_down, untouched, wait_until
from tests.test_serve import ADMIN, Served, token_file

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("web")]

WORKLOADS = {namespace: workloads for namespace, _, workloads in FLEET}
TIMEOUT_MS = 20_000  # a run of the server and a refresh of the list, on a loaded machine
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        seed_fleet(server)
        yield server


@pytest.fixture(scope="module")
def server(
    cluster: ApiServer, tmp_path_factory: pytest.TempPathFactory, kubectl_bin: Path
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("web")
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    env = nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"))
    served = Served(env, "--token-file", str(token_file(home / "tokens", f"{ADMIN} # admin\n")))
    yield served
    assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)  # BrowserMissing (a failure) when it is not installed
        yield chromium
        chromium.close()


class Tab:
    """A fresh browser context on the server, and everything it asked and was told."""

    def __init__(self, browser: Browser, server: Served, width: int = 1280) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list[Request] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", self._request)
        self.page: Page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request: Request) -> None:
        self.requests.append(request)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.base + path)
        return self.page

    def sign_in(self, token: str = ADMIN, path: str = "/") -> Page:
        page = self.open(path)
        page.fill("#token", token)
        page.press("#token", "Enter")
        return page

    def section(self, namespace: str) -> str:
        return f'section.ns[data-namespace="{namespace}"]'

    def check(self) -> None:
        """Only the server was asked; no page error, no CSP violation, no console error."""
        elsewhere = [r.url for r in self.requests if not r.url.startswith(self.base + "/")]
        assert not elsewhere, f"requests to another host: {elsewhere}"
        assert not self.errors, self.errors
        noise = [m for m in self.console if m.startswith(("error", "warning"))]
        # Chromium logs the API's 401 (a wrong token) and 500 (a failed run) it was meant to get
        meant = [
            m for m in noise if re.search(r"Failed to load resource: .* status of (401|500)", m)
        ]
        assert not [m for m in noise if m not in meant], noise
        assert not [m for m in self.console if "Content Security Policy" in m], self.console


@pytest.fixture
def tab(browser: Browser, server: Served) -> Iterator[Tab]:
    opened = Tab(browser, server)
    yield opened
    opened.context.close()


@pytest.fixture
def phone(browser: Browser, server: Served) -> Iterator[Tab]:
    """A tab 375 px wide."""
    opened = Tab(browser, server, width=375)
    yield opened
    opened.context.close()


@pytest.fixture
def faults(cluster: ApiServer) -> Iterator[ApiServer]:
    yield cluster
    cluster.clear_faults()


# ------------------------------------------------------------------------------- HTTP


def test_the_page_and_its_files_carry_a_strict_policy_and_no_inline_code(server: Served) -> None:
    for path, kind in (
        ("/", "text/html"),
        ("/namespaces/shop", "text/html"),
        ("/static/page.js", "text/javascript"),
        ("/static/page.css", "text/css"),
    ):
        reply = server.request("GET", path, token=None)  # the page holds no data: no token
        assert reply.status == 200, reply
        assert reply.headers["content-type"].startswith(kind), (path, reply.headers)
        for name, value in PAGE_HEADERS.items():
            assert reply.headers.get(name) == value, (path, name, reply.headers)
    html = server.request("GET", "/", token=None).text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert not re.search(r"\sstyle=|<style", html), "an inline style"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a file from another host"
    # what is not the page stays the API's JSON: no such file, nothing outside static/, and no
    # method the page was not written for
    for method, path, status in (
        ("GET", "/api/nope", 404),
        ("GET", "/static/nope.js", 404),
        ("GET", "/static/%2E%2E/web.py", 404),
        ("GET", "/static/../web.py", 404),
        ("OPTIONS", "/", 405),
        ("POST", "/", 405),
        ("DELETE", "/static/page.js", 405),
    ):
        refused = server.request(method, path)
        assert refused.status == status, (method, path, refused)
        assert refused.json["success"] is False


def test_a_wheel_carries_every_file_of_the_page() -> None:
    """pyproject.toml's package data names each file of templates/ and static/ (a file it
    misses is served from a checkout, and missing from an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["nsscale.serve"]
    package = Path(web.__file__).parent
    files = [
        PurePosixPath(path.relative_to(package).as_posix())
        for folder in ("templates", "static")
        for path in (package / folder).rglob("*")
        if path.is_file()
    ]
    assert len(files) >= 4, files
    assert [f for f in files if not any(f.match(p) for p in patterns)] == []


# ------------------------------------------------------------------------------- the browser


def test_sign_in_asks_again_on_a_401_and_keeps_the_token_in_the_tab_only(tab: Tab) -> None:
    page = tab.sign_in("not-a-token-0123456789abcdef")
    page.wait_for_selector("#login:not([hidden])")
    assert "refused the token" in page.inner_text("#login-why")
    page.fill("#token", ADMIN)
    page.press("#token", "Enter")
    page.wait_for_selector(tab.section("shop"))
    states = {ns: page.get_attribute(f"{tab.section(ns)} .state", "data-state") for ns in WORKLOADS}
    assert states == dict.fromkeys(WORKLOADS, "awake")
    assert str(page.text_content(f"{tab.section('shop')} .state")).endswith(" Awake")  # a word
    assert page.inner_text(f"{tab.section('shop')} .count") == "3/3 up"
    # the last run, from the Namespace's nsscale/last-run: what, how it ended, who
    assert "Last run\ndown success by system:serviceaccount:nsscale:scheduler, " in page.inner_text(
        f"{tab.section('batch')} .facts"
    )
    # the token: in sessionStorage and the bearer header; never a cookie, never a URL
    assert page.evaluate("sessionStorage.getItem('nsscale.token')") == ADMIN
    assert tab.context.cookies() == []
    api = [r for r in tab.requests if "/api/" in r.url]
    assert api, tab.requests
    assert all(ADMIN not in r.url for r in tab.requests)
    assert {r.headers.get("authorization") for r in api} == {
        "Bearer not-a-token-0123456789abcdef",
        f"Bearer {ADMIN}",
    }
    tab.check()


def test_sleep_by_keyboard_then_wake_and_wake_for_4_h(
    tab: Tab, cluster: ApiServer, server: Served
) -> None:
    page = tab.sign_in()
    shop = tab.section("shop")
    page.wait_for_selector(shop)
    sleep = page.locator(f'{shop} button[data-action="sleep"]')
    for _ in range(60):  # Tab until the Sleep button of shop has the focus
        page.keyboard.press("Tab")
        if sleep.evaluate("button => button === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached shop's Sleep button")
    # the focus is seen: a solid outline, not the browser's faint default
    assert sleep.evaluate("button => getComputedStyle(button).outlineStyle") == "solid"
    page.keyboard.press("Enter")  # asks first: Sleep takes services down
    confirm = page.locator(f'{shop} button[data-action="confirm"]')
    assert confirm.evaluate("button => button === document.activeElement")
    page.keyboard.press("Escape")  # changed my mind: back to Sleep, nothing done
    assert sleep.evaluate("button => button === document.activeElement")
    page.keyboard.press("Enter")
    assert confirm.evaluate("button => button === document.activeElement")
    assert observe(cluster, "shop") == untouched(WORKLOADS["shop"])
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{shop}[data-state="asleep"]')
    answer = page.inner_text(f"{shop} .answer")
    assert "Done: Namespace shop deactivated" in answer, answer
    assert "deployment/web 3 \u2192 0" in answer, answer
    assert str(page.text_content(f"{shop} .state")).endswith(" Asleep")
    assert page.inner_text(f"{shop} .count") == "0/3 up"
    assert observe(cluster, "shop") == scaled_down(WORKLOADS["shop"])
    assert page.get_attribute(f"{shop} .answer", "aria-live") == "polite"

    page.click(f'{shop} button[data-action="wake"]')
    page.wait_for_selector(f'{shop}[data-state="awake"]')
    assert "Namespace shop activated" in page.inner_text(f"{shop} .answer")
    assert observe(cluster, "shop") == untouched(WORKLOADS["shop"])

    preview = tab.section("preview-42")
    page.click(f'{preview} button[data-action="sleep"]')
    page.click(f'{preview} button[data-action="confirm"]')
    page.wait_for_selector(f'{preview}[data-state="asleep"]')
    page.click(f'{preview} button[data-action="hold"]')
    page.wait_for_selector(f'{preview}[data-state="awake"]')
    assert "held until" in page.inner_text(f"{preview} .facts")
    namespace = cluster.get_object("namespaces", "", "preview-42")
    assert namespace is not None
    pause = namespace["metadata"]["annotations"]["nsscale/pause-until"]
    assert datetime.fromisoformat(pause) > datetime.now(UTC)
    tab.check()


def test_a_failure_shows_its_rollback_and_the_namespace_as_it_was(
    phone: Tab, faults: ApiServer
) -> None:
    tab = phone  # on a phone: the long error wraps, nothing scrolls sideways
    faults.fail("PUT", "statefulsets", "db", namespace="faulty", status=500, times=None)
    page = tab.sign_in()
    faulty = tab.section("faulty")
    page.click(f'{faulty} button[data-action="sleep"]')
    page.click(f'{faulty} button[data-action="confirm"]')
    page.wait_for_selector(f"{faulty} .answer-failed")
    answer = page.inner_text(f"{faulty} .answer")
    assert "Failed to deactivate namespace faulty" in answer, answer
    assert "1 workload(s) put back; the namespace is as it was" in answer, answer
    assert "deployment/web back to 2" in answer, answer
    assert page.get_attribute(f"{faulty} .answer", "data-status") == "500"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert observe(faults, "faulty") == untouched(WORKLOADS["faulty"])
    assert wait_until(lambda: page.get_attribute(faulty, "data-state") == "awake", 10, 0.1)
    # someone scales a workload by hand: Refresh shows it, and keeps the answer on screen
    faults.edit_workload("faulty", "deployment", "web", replicas=0)
    try:
        page.click("#refresh")
        page.wait_for_selector(f'{faulty}[data-state="partly"]')
        assert page.inner_text(f"{faulty} .count") == "1/2 up"
        assert "deployment/web back to 2" in page.inner_text(f"{faulty} .answer")
    finally:
        faults.edit_workload("faulty", "deployment", "web", replicas=2)
    tab.check()


def test_the_week_strip_of_a_window_across_midnight(tab: Tab) -> None:
    before = datetime.now(UTC)
    page = tab.sign_in()
    batch = tab.section("batch")  # uptime Mon-Fri 22:00-06:00 UTC
    page.wait_for_selector(f"{batch} .week")
    after = datetime.now(UTC)
    cells = page.eval_on_selector_all(
        f"{batch} .slot",
        "cells => cells.map(c => [+c.dataset.day, +c.dataset.slot, c.dataset.up, c.className])",
    )
    found = ["".join("?" for _ in range(48)) for _ in range(7)]
    rows = [list(row) for row in found]
    for day, slot, up, classes in cells:
        assert classes == ("slot up" if up == "1" else "slot down"), (day, slot, classes)
        rows[day][slot] = up
    night = "1" * 12 + "0" * 32 + "1" * 4  # up to 06:00, down, up from 22:00
    assert ["".join(row) for row in rows] == [
        "0" * 44 + "1" * 4,  # Monday: no Sunday night before it
        night,
        night,
        night,
        night,
        "1" * 12 + "0" * 36,  # Saturday: Friday's night until 06:00
        "0" * 48,
    ]
    labels = page.eval_on_selector_all(f"{batch} .week-day", "days => days.map(d => d.textContent)")
    assert [label.split()[0] for label in labels] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
    # the marker at now: in today's row (UTC), at this minute
    [marker] = page.eval_on_selector_all(
        f"{batch} .now",
        "marks => marks.map(m => [+m.closest('.week-row').querySelector('.slot').dataset.day,"
        " +m.dataset.minute])",
    )
    seen = [(t.weekday(), t.hour * 60 + t.minute) for t in (before, after)]
    assert seen[0] <= tuple(marker) <= seen[1], (marker, seen)
    assert "times in UTC" in page.inner_text(f"{batch} .week")
    tab.check()


def test_at_375_px_nothing_scrolls_sideways_and_the_namespace_page_shows_workloads_and_history(
    phone: Tab, server: Served
) -> None:
    runs = [server.post("faulty", action).json["run_id"] for action in ("deactivate", "activate")]
    page = phone.sign_in()
    page.wait_for_selector(phone.section("faulty"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.click(f"{phone.section('faulty')} h2 a")
    page.wait_for_url("**/namespaces/faulty")
    # the token came along (the same tab's sessionStorage): the workloads, then the runs
    page.wait_for_selector("table.workloads")
    workloads = page.inner_text("table.workloads")
    assert "deployment/web" in workloads
    assert "statefulset/db" in workloads
    history = page.inner_text("table.runs")
    assert history.index(runs[1]) < history.index(runs[0]), history  # newest first
    assert "token:admin" in history, history  # who asked
    # an action on the namespace page brings its workloads and its runs up to date
    page.click('button[data-action="sleep"]')
    page.click('button[data-action="confirm"]')
    page.wait_for_selector('section.ns[data-state="asleep"] .answer-ok')
    run_id = page.inner_text(".answer .run-id").removeprefix("run ")
    page.wait_for_selector(f'table.runs :text("{run_id}")')
    assert "deployment/web" in page.inner_text("table.workloads")
    replicas = page.eval_on_selector_all(
        "table.workloads tbody tr", "rows => rows.map(r => r.cells[1].textContent)"
    )
    assert replicas == ["0", "0"], replicas
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.click('button[data-action="wake"]')
    page.wait_for_selector('section.ns[data-state="awake"] .answer-ok')
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    phone.check()
