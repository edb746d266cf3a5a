"""Steps the browser tests (tests/e2e) share: logging in through both forms, as a user would."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

from tests.plugins.accounts import totp_code

if TYPE_CHECKING:  # imported by name, pytest would try to collect the dataclass as a test class
    from tests.plugins.accounts import TestUser

TOTP_LABEL = "Code from your authenticator app"


def log_out_button(page: Page, username: str):
    return page.get_by_role("button", name=f"Log out {username}")


def log_in(page: Page, test_user: TestUser) -> None:
    """Both login steps through the forms, as a user would."""
    username = test_user.user.get_username()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(test_user.password)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/verify/"))
    page.get_by_label(TOTP_LABEL).fill(totp_code(test_user.device))
    page.get_by_role("button", name="Verify").click()
    expect(log_out_button(page, username)).to_be_visible()
