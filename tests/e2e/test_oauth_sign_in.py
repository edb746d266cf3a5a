"""'Sign in with <provider>' in a real browser: the add page's button, the provider's consent page (the fake
provider on loopback TLS), the redirect back, and the mailbox reached with the token on the OAuth Dovecot."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from mail.models import MailAccount
from tests.plugins.accounts import create_test_user
from tests.plugins.browser import log_in


def test_sign_in_with_the_provider_and_choose_folders(
    browser: Browser, live_server, settings, oauth_server, oauth_user, dovecot_oauth, shot
):
    settings.MAILHELPER_BASE_URL = live_server.url  # where the provider sends the browser back
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "generic": oauth_server.provider_settings(dovecot_oauth.host, dovecot_oauth.port)
    }
    hanna = create_test_user("hanna")
    # The provider's certificate is the test CA's: the product trusts it (MAILHELPER_EXTRA_CA_FILE), the
    # browser is told to, as a user's browser trusts Google's.
    context = browser.new_context(base_url=live_server.url, ignore_https_errors=True, locale="en-US")
    try:
        page = context.new_page()
        log_in(page, hanna)
        page.goto("/mail/accounts/add/")
        expect(page.get_by_role("heading", name="Sign in with your mail provider")).to_be_visible()
        shot("add-page", page)
        page.get_by_role("button", name="Sign in with Example Mail").first.click()

        expect(page.get_by_role("heading", name="Example Mail")).to_be_visible()
        assert page.url.startswith(oauth_server.url("/authorize"))
        expect(page.get_by_text(f"Allow Mailhelper to read and send mail as {oauth_user.username}?")).to_be_visible()
        shot("consent", page)
        page.get_by_role("button", name="Allow").click()

        expect(page).to_have_url(re.compile(r"/mail/accounts/[0-9a-f-]{36}/folders/$"))
        expect(page.get_by_role("status").filter(has_text="Signed in with")).to_contain_text(
            f"Signed in with Example Mail as {oauth_user.username}"
        )
        expect(page.get_by_role("status").filter(has_text="Connected:")).to_contain_text(
            re.compile(r"Connected: \d+ folders\.")
        )
        expect(page.get_by_role("checkbox", name=re.compile(r"^Inbox"))).to_be_checked()
        shot("folders", page)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("link", name=f"Example Mail ({oauth_user.username})")).to_be_visible()
        account = MailAccount.objects.get(owner=hanna.user)
        assert account.uses_oauth and account.imap_username == oauth_user.username
    finally:
        context.close()
