"""Real-browser fixtures: Debian's Chromium driven by Playwright (sync API) against pytest-django's live_server.

* One Chromium per test session (starting it costs about a second); every test gets a fresh browser
  context, so cookies, sessions and storage never leak from one test to the next.
* No browser is ever downloaded: Playwright is pointed at /usr/bin/chromium (`playwright install` is
  not needed and must not be run).
* Secure cookies: the test settings keep SESSION_COOKIE_SECURE/CSRF_COOKIE_SECURE on (DEBUG is off).
  Chromium treats http://localhost as a potentially trustworthy origin and stores and sends Secure
  cookies there, so the e2e tests run with the production cookie flags unchanged (test_flows checks
  that the session cookie really is Secure + HttpOnly).
* Screenshots of each step go to test-artifacts/e2e/<test-name>/<NN>-<step>.png under the repository
  root (gitignored); a failing test also leaves a "failure" screenshot of the page it failed on.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.plugins.celery_worker import wait_until_worker_idle

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in a container: Chromium's sandbox cannot start there
    "--disable-gpu",
    "--disable-background-networking",  # no update checks, safe-browsing lists, etc.: no traffic off the box
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 10_000

expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def _allow_orm_next_to_playwright_loop() -> Iterator[None]:
    """Let the test process use the ORM while Playwright's sync API is active.

    Playwright's sync API drives an asyncio event loop in the test's own thread, and Django refuses ORM
    calls from a thread with a running loop (SynchronousOnlyOperation). The tests' ORM calls (creating
    users, reading TOTP devices, flushing the database between tests) are plain synchronous code, so the
    guard is a false alarm here. This is set only in the pytest process (and inherited by test worker
    subprocesses started afterwards, which run no event loop); production never sets it.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(_allow_orm_next_to_playwright_loop) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (never `playwright install`)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class RequestLog:
    """Every URL the browser requested in one test (all pages of the context)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def off_host(self, base_url: str) -> list[str]:
        """Requests that left the live server: any other host, port or scheme (data: URLs stay local)."""
        allowed = urlsplit(base_url).netloc
        return [
            url
            for url in self.urls
            if not url.startswith(("data:", "blob:", "about:")) and urlsplit(url).netloc != allowed
        ]


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
def context(browser: Browser, live_server, request_log: RequestLog) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US")
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    ctx.on("request", lambda req: request_log.urls.append(req.url))
    yield ctx
    ctx.close()


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors of the test's page (filled by the `page` fixture)."""
    return []


@pytest.fixture
def page(context: BrowserContext, js_errors: list[str], request) -> Iterator[Page]:
    p = context.new_page()
    p.on("pageerror", lambda exc: js_errors.append(str(exc)))
    yield p
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not p.is_closed():
        directory = _artifact_dir(request.node.name)
        directory.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(directory / "failure.png"), full_page=True)


def _artifact_dir(test_name: str) -> Path:
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)


@pytest.fixture
def shot(page: Page, request) -> Callable[[str], Path]:
    """shot("step-name") saves a full-page PNG to test-artifacts/e2e/<test-name>/<NN>-<step-name>.png."""
    directory = _artifact_dir(request.node.name)
    shutil.rmtree(directory, ignore_errors=True)  # only this run's screenshots, no stale steps
    directory.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def take(step: str, target: Page | None = None) -> Path:
        path = directory / f"{next(counter):02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', step)}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the call phase's report on the item so the page fixture can screenshot failures."""
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


@pytest.fixture(autouse=True)
def _idle_worker_at_teardown() -> Iterator[None]:
    """Let the worker finish what the test started before the database is flushed.

    Pages queue tasks (a sync chains analysis; opening or flagging a message queues a write-back) that keep
    writing after the page is done; the flush between tests (TRUNCATE) would deadlock with them. Being an
    autouse fixture of this directory, it is torn down before pytest-django's database fixtures.
    """
    yield
    wait_until_worker_idle()
