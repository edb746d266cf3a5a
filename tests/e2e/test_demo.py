"""The demo as a newcomer sees it: log in with what `make demo` prints, then dashboard, list and a message.

The same run takes the README's screenshots: with MAILHELPER_SCREENSHOTS=1 they are written to
docs/screenshots/ (committed); otherwise they go to test-artifacts/ like every other step.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from mailhelper.demo import setup

ROOT = Path(__file__).resolve().parents[2]
README_SHOTS = ROOT / "docs" / "screenshots"
TOTP_LABEL = "Code from your authenticator app"


def _readme_shot(page: Page, name: str, shot) -> None:
    path = shot(name)
    if os.environ.get("MAILHELPER_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"))  # the first screen, as the README shows it
        assert (README_SHOTS / f"{name}.png").stat().st_size > 10_000
    assert path.stat().st_size > 10_000


def test_the_demo_shows_a_synced_analysed_mailbox(live_server, demo_server, page: Page, shot):
    login = setup.prepare(demo_server.directory, demo_server.server)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(login.username)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/verify/"))
    page.get_by_label(TOTP_LABEL).fill(setup.current_code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Log out demo")).to_be_visible()

    page.goto("/")
    # The dashboard's matrix counts what the analysis found: nothing is left pending.
    expect(page.locator("main")).not_to_contain_text("waiting for analysis")
    _readme_shot(page, "dashboard", shot)

    page.goto("/mail/")
    rows = page.locator("tr[data-message]")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 25
    expect(page.locator("main")).to_contain_text("Invitation")
    _readme_shot(page, "list", shot)

    page.get_by_role("link", name=re.compile(r"^Invitation: ")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invitation")
    _readme_shot(page, "message", shot)
