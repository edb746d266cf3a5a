"""One browser flow in German (#14): a browser that asks for German logs in, sees the dashboard and the list."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.plugins.accounts import create_test_user, totp_code


def test_log_in_and_see_the_dashboard_in_german(browser: Browser, live_server, shot):
    user = create_test_user("greta")
    context = browser.new_context(base_url=live_server.url, locale="de-DE", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        expect(page).to_have_title(re.compile(r"^Anmelden"))
        assert page.evaluate("() => document.documentElement.lang") == "de"
        page.get_by_label("Benutzername").fill("greta")
        page.get_by_label("Passwort").fill(user.password)
        page.get_by_role("button", name="Weiter").click()
        expect(page.get_by_role("heading", name="Code eingeben")).to_be_visible()
        page.get_by_label("Code aus Ihrer Authenticator-App").fill(totp_code(user.device))
        page.get_by_role("button", name="Bestätigen").click()
        expect(page.get_by_role("button", name="greta abmelden")).to_be_visible()

        page.get_by_role("link", name="Übersicht").click()
        expect(page.get_by_role("heading", name="Was Sie braucht")).to_be_visible()
        expect(page.get_by_role("heading", name="Noch nichts zu sichten")).to_be_visible()
        expect(page.get_by_test_id("to-reply")).to_contain_text("Zu beantworten")
        shot("dashboard-de", page)
        page.get_by_role("link", name="Post", exact=True).click()
        expect(page.get_by_role("heading", name="Alle Post")).to_be_visible()
        expect(page.get_by_role("heading", name="Noch kein Postkonto")).to_be_visible()
        shot("list-de", page)
    finally:
        context.close()
