"""End-to-end flows in a real Chromium: sign-up with 2FA, connecting and syncing a mailbox, basic
accessibility and a phone-width layout check.

The browser talks to pytest-django's live_server; mail comes from the session Dovecot and syncs run in
the real Celery worker, so these tests cover the wiring (templates, htmx, cookies, CSRF, tasks) that
the view tests with Django's test client cannot see.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from django_otp.oath import hotp
from playwright.sync_api import Page, expect

from analysis import tasks as analysis_tasks
from mail import replies
from mail.models import Draft, Folder, Message, SyncRun
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import create_test_user, totp_code
from tests.plugins.browser import TOTP_LABEL, log_in, log_out_button
from tests.plugins.mail import create_account, make_raw, run_sync

if TYPE_CHECKING:  # imported by name, pytest would try to collect the dataclass as a test class
    from tests.plugins.accounts import TestUser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


# Lists the form controls a user cannot identify by a label: no <label>, no aria-label(ledby), or an empty one.
UNLABELLED_FIELDS_JS = """() => {
  const named = (el) => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const ids = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
    if (ids.some((id) => (document.getElementById(id)?.textContent || '').trim())) return true;
    return [...(el.labels || [])].some((label) => label.textContent.trim());
  };
  return [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && el.name !== 'csrfmiddlewaretoken')
    .filter((el) => !['submit', 'button', 'reset', 'image'].includes(el.type))
    .filter((el) => !named(el))
    .map((el) => el.outerHTML.slice(0, 160));
}"""

# The page's width against the viewport's, and what sticks out on the right (to say why it scrolls).
HORIZONTAL_OVERFLOW_JS = """() => {
  const root = document.documentElement;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map((c) => '.' + c).join('') + ' "' + (el.textContent || '').trim().slice(0, 30) + '"';
  const sticking_out = [...document.body.querySelectorAll('*')]
    .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 1)
    .filter((el) => el.parentElement.getBoundingClientRect().right <= root.clientWidth + 1)
    .slice(0, 8)
    .map((el) => describe(el) + ' right=' + Math.round(el.getBoundingClientRect().right));
  return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, sticking_out};
}"""


# Links the crawl in the accessibility test does not follow: files, not pages, and the admin.
CRAWL_SKIP = ("/mail/attachments/", "/admin/", "/static/", "/healthz", "/metrics")


# --- helpers ---------------------------------------------------------------------------------------


def totp_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 30)


def totp_from_secret(shown_secret: str, step: int) -> str:
    """The code an authenticator app shows for the secret as displayed (base32 in groups of four)."""
    key = base64.b32decode(shown_secret.replace(" ", ""))
    return str(hotp(key, step, digits=6)).zfill(6)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def log_out(page: Page, username: str) -> None:
    log_out_button(page, username).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("status")).to_contain_text("You are logged out.")


def row(page: Page, subject: str):
    """The list row whose subject link reads exactly `subject` (not one whose summary mentions it)."""
    return page.locator("tr[data-message]").filter(has=page.get_by_role("link", name=subject, exact=True))


def font_weight(locator) -> int:
    return int(locator.evaluate("(el) => getComputedStyle(el).fontWeight"))


def assert_page_basics(page: Page) -> None:
    """What every page must have: a language, a non-empty <title>, one <h1>, labelled form fields."""
    url = page.url
    assert page.evaluate("() => document.documentElement.lang"), f"{url}: <html> has no lang"
    title = page.title().strip()
    assert title and title != "· Mailhelper", f"{url}: empty <title>"
    assert page.locator("h1").count() == 1, f"{url}: expected exactly one <h1>"
    unlabelled = page.evaluate(UNLABELLED_FIELDS_JS)
    assert unlabelled == [], f"{url}: form fields without a label: {unlabelled}"


# --- tests -----------------------------------------------------------------------------------------


def test_register_enrol_totp_log_out_and_log_back_in(page: Page, shot, live_server):
    username, password = "erin", "violet meadow lantern 2718"

    page.goto("/accounts/register/")
    expect(page).to_have_title(re.compile(r"^Create an account"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill("erin@example.test")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(password)
    shot("register")
    page.get_by_role("button", name="Create account").click()

    # Enrolment is mandatory and comes right after registering.
    expect(page).to_have_url(re.compile(r"/accounts/2fa/setup/$"))
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})*", secret), secret
    shot("2fa-setup")
    enrol_step = totp_step()
    page.get_by_label(TOTP_LABEL).fill(totp_from_secret(secret, enrol_step))
    page.get_by_role("button", name="Turn on").click()

    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    assert len(set(codes.all_inner_texts())) == 10
    shot("recovery-codes")
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()

    # The production cookie flags stay on: Chromium keeps Secure cookies on http://localhost.
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert session_cookie["secure"] and session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"

    log_out(page, username)
    shot("logged-out")
    page.goto("/mail/")  # protected: back to the login page, remembering where we were going
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=%2Fmail%2F$"))

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/verify/"))
    shot("2fa-verify")
    # The code of the step used for enrolment is spent (replay protection): take the next one if needed.
    page.get_by_label(TOTP_LABEL).fill(totp_from_secret(secret, max(totp_step(), enrol_step + 1)))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{live_server.url}/mail/")
    expect(log_out_button(page, username)).to_be_visible()
    page.get_by_role("link", name="Mailhelper").click()
    expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()
    shot("home")


def test_add_account_sync_read_and_flag_a_message(celery_worker, live_server, dovecot, imap_user, page: Page, shot):
    subjects = ["Quarterly report", "Lunch tomorrow?", "Invoice 2026-001", "Newsletter you already read"]
    for n, subject in enumerate(subjects, start=1):  # UIDs 1..4 in this order; the last one is already read
        dovecot.deliver(imap_user, make_raw(n, subject=subject), flags="S" if n == 4 else "")
    carol = create_test_user("carol")
    log_in(page, carol)

    # Add the account through the form.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", name="No mail account yet")).to_be_visible()
    page.get_by_role("link", name="Add your first account").click()
    expect(page).to_have_url(re.compile(r"/mail/accounts/add/$"))
    page.get_by_label("Name", exact=True).fill("Work")
    page.get_by_label("Email address", exact=True).fill("carol@example.test")
    page.get_by_label("Incoming mail server", exact=True).fill(dovecot.host)
    page.get_by_label("Port", exact=True).fill(str(dovecot.port))
    page.get_by_label("Security", exact=True).select_option("plain")
    page.get_by_label("User name", exact=True).fill(imap_user.username)
    page.get_by_label("Password", exact=True).fill(imap_user.password)
    shot("add-account")
    page.get_by_role("button", name="Add and choose folders").click()

    # The folder page connects to the server and offers its folders; the inbox is preselected.
    expect(page).to_have_url(re.compile(r"/mail/accounts/[0-9a-f-]{36}/folders/$"))
    expect(page.get_by_role("status").filter(has_text="Connected:")).to_contain_text(
        re.compile(r"Connected: \d+ folders\.")
    )
    expect(page.get_by_role("checkbox", name=re.compile(r"^Inbox"))).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Archive"))).not_to_be_checked()
    shot("folders")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/mail/accounts/$"))
    expect(page.get_by_role("status")).to_contain_text("1 folder(s) will be synced.")

    # Test the stored settings from the edit page (htmx swaps the report in place).
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(r"/mail/accounts/[0-9a-f-]{36}/edit/$"))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-report")).to_contain_text(re.compile(r"Connected: \d+ folders\."))
    expect(page.locator("#connection-report")).to_contain_text(re.compile(r"INBOX\b.* — 4 messages, 3 unread"))
    shot("test-connection")

    # Sync now: the progress block polls itself until the real worker has finished.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    page.get_by_role("button", name="Sync now").click()
    expect(page).to_have_url(re.compile(r"/mail/sync-runs/\d+/$"))
    progress = page.locator("#sync-progress")
    expect(progress).to_have_attribute("data-status", re.compile(r"queued|running|success"))
    expect(progress).to_have_attribute("data-status", "success", timeout=45_000)
    expect(page.get_by_test_id("messages-new")).to_have_text("4")
    shot("sync-done")

    # The list shows unread mail in bold, read mail not.
    page.get_by_role("link", name="Go to the messages").click()
    rows = page.locator("tr[data-message]")
    expect(rows).to_have_count(4)
    expect(page.locator("tr[data-message].unread")).to_have_count(3)
    for subject in subjects[:3]:
        expect(row(page, subject)).to_have_class(re.compile(r"\bunread\b"))
        assert font_weight(row(page, subject).locator(".subject a")) >= 700
    expect(row(page, subjects[3])).not_to_have_class(re.compile(r"\bunread\b"))
    assert font_weight(row(page, subjects[3]).locator(".subject a")) < 600
    shot("message-list")

    # Opening a message shows it, marks it read here and writes \Seen back to the server.
    assert "\\Seen" not in srv.server_flags(dovecot, imap_user)[1]
    row(page, subjects[0]).get_by_role("link", name=subjects[0]).click()
    expect(page).to_have_url(re.compile(r"/mail/messages/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(subjects[0])
    expect(page).to_have_title(re.compile(rf"^{re.escape(subjects[0])}"))
    expect(page.locator("pre.text-body")).to_contain_text("body of message 1.")
    expect(page.get_by_role("button", name="Mark unread")).to_be_visible()
    shot("message")
    wait_for(lambda: "\\Seen" in srv.server_flags(dovecot, imap_user)[1], 15, "\\Seen on the server")
    assert "\\Seen" not in srv.server_flags(dovecot, imap_user)[2]  # only the opened message

    # Flag it: the button turns into "Remove flag" and \Flagged reaches the server.
    page.get_by_role("button", name="Flag", exact=True).click()
    expect(page.get_by_role("button", name="Remove flag")).to_be_visible()
    wait_for(lambda: "\\Flagged" in srv.server_flags(dovecot, imap_user)[1], 15, "\\Flagged on the server")
    shot("flagged")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Mail").click()
    expect(row(page, subjects[0])).to_have_class(re.compile(r"\bflagged\b"))
    expect(row(page, subjects[0])).not_to_have_class(re.compile(r"\bunread\b"))
    expect(page.locator("tr[data-message].unread")).to_have_count(2)
    shot("message-list-after")
    log_out(page, "carol")


def test_pages_have_titles_labels_and_make_no_third_party_requests(
    live_server, dovecot, imap_user, page: Page, shot, request_log, js_errors
):
    """Visit every page a user can reach (a fixed list plus every in-app link found on the way) and check
    the basics on each; log in with the keyboard only."""
    dovecot.deliver(imap_user, make_raw(1, subject="Hello from the e2e test"))
    dovecot.deliver(imap_user, make_raw(2, html=True, attachment=b"\x00\x01 data"))
    dana = create_test_user("dana")
    account = create_account(dana.user, imap_user, dovecot, name="Personal")
    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS
    inbox = Folder.objects.get(account=account, name="INBOX")
    message = Message.objects.filter(account=account).order_by("uid").first()
    draft = replies.create_draft(message, "reply")
    problems: list[str] = []
    visited: list[str] = []

    def visit(path: str) -> None:
        response = page.goto(path)
        visited.append(path)
        if response is None or not response.ok:
            problems.append(f"{path}: HTTP {response and response.status}")
            return
        try:
            assert_page_basics(page)
        except AssertionError as exc:
            problems.append(f"{path}: {exc}")
        shot(path.strip("/").replace("/", "_") or "root")

    for path in ["/accounts/register/", "/accounts/recover/", "/accounts/login/"]:
        visit(path)

    # Log in with the keyboard alone: Tab to the fields, Enter to submit; the code field has autofocus.
    tabbed_to = []
    for _ in range(10):  # from the top of the page: brand link, ..., the username field
        page.keyboard.press("Tab")
        tabbed_to.append(page.evaluate("() => document.activeElement.name || document.activeElement.textContent"))
        if tabbed_to[-1] == "username":
            break
    assert tabbed_to[-1] == "username", f"Tab never reached the username field: {tabbed_to}"
    page.keyboard.type("dana")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "password"
    page.keyboard.type(dana.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/verify/"))
    expect(page.get_by_label(TOTP_LABEL)).to_be_focused()
    assert_page_basics(page)
    shot("2fa-verify")
    page.get_by_role("link", name="Lost your phone? Use a recovery code").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/recovery/"))
    assert_page_basics(page)
    shot("2fa-recovery")
    page.get_by_role("link", name="Back to the authenticator code").click()
    expect(page.get_by_label(TOTP_LABEL)).to_be_focused()
    page.keyboard.type(totp_code(dana.device))
    page.keyboard.press("Enter")
    expect(log_out_button(page, "dana")).to_be_visible()

    queue = [
        "/",
        "/mail/",
        f"/mail/a/{account.pk}/",
        f"/mail/a/{account.pk}/f/{inbox.pk}/",
        f"/mail/messages/{message.pk}/",
        "/mail/accounts/",
        "/mail/accounts/add/",
        f"/mail/accounts/{account.pk}/edit/",
        f"/mail/accounts/{account.pk}/folders/",
        f"/mail/accounts/{account.pk}/delete/",
        f"/mail/sync-runs/{run.pk}/",
        "/mail/drafts/",
        f"/mail/drafts/{draft.pk}/",
        "/mail/settings/replies/",
        "/accounts/settings/",
        "/accounts/settings/password/",
        "/accounts/settings/recovery-codes/",
        "/accounts/settings/strict-mode/",
    ]
    host = urlsplit(live_server.url).netloc
    while queue and len(visited) < 60:
        path = queue.pop(0)
        if path in visited:
            continue
        visit(path)
        for href in page.eval_on_selector_all("a[href]:not([download])", "(links) => links.map((a) => a.href)"):
            url = urlsplit(href)  # each path once: filter and page variants (?page=2, ?u=3) render the same template
            known = {urlsplit(p).path for p in visited + queue}
            if url.netloc == host and not url.path.startswith(CRAWL_SKIP) and url.path not in known:
                queue.append(url.path)

    assert problems == [], "\n".join(problems)
    assert len(visited) >= 20, visited
    assert request_log.urls, "the request listener saw nothing"
    assert request_log.off_host(live_server.url) == []
    assert js_errors == []


PHONE = {"width": 375, "height": 740}


def phone_user_with_mail(dovecot, imap_user) -> TestUser:
    subjects = [
        "Re: Fwd: Re: the agenda for Thursday's planning meeting with the whole regional team and guests",
        "Short one",
        "Invoice",
    ]
    for n, subject in enumerate(subjects, start=1):
        dovecot.deliver(imap_user, make_raw(n, subject=subject, sender="a.rather.long.sender.address@example.test"))
    eve = create_test_user("eve")
    account = create_account(eve.user, imap_user, dovecot, name="Phone")
    assert run_sync(account).status == SyncRun.Status.SUCCESS
    return eve


def assert_no_sideways_scroll(page: Page) -> None:
    sizes = page.evaluate(HORIZONTAL_OVERFLOW_JS)
    assert sizes["clientWidth"] == PHONE["width"]
    assert sizes["scrollWidth"] <= sizes["clientWidth"] + 1, f"{page.url} scrolls sideways: {sizes}"


def test_message_list_fits_a_phone_screen(live_server, dovecot, imap_user, page: Page, shot):
    eve = phone_user_with_mail(dovecot, imap_user)
    page.set_viewport_size(PHONE)
    log_in(page, eve)
    page.goto("/mail/")
    expect(page.locator("tr[data-message]")).to_have_count(3)
    shot("message-list-375")
    assert_no_sideways_scroll(page)


def test_a_message_fits_a_phone_screen(live_server, dovecot, imap_user, page: Page, shot):
    eve = phone_user_with_mail(dovecot, imap_user)
    page.set_viewport_size(PHONE)
    log_in(page, eve)
    page.goto("/mail/")
    page.get_by_role("link", name=re.compile(r"^Re: Fwd: Re: the agenda")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("the agenda for Thursday")
    # The "Similar messages" block arrives by htmx after the page (a few messages: not enough to learn topics).
    expect(page.locator("section.similar")).to_contain_text("Not enough mail yet to learn topics")
    shot("message-375")
    assert_no_sideways_scroll(page)


def test_dashboard_accounts_rules_and_tags_fit_a_phone_screen(live_server, dovecot, imap_user, page: Page, shot):
    eve = phone_user_with_mail(dovecot, imap_user)
    page.set_viewport_size(PHONE)
    log_in(page, eve)
    for path in (
        "/mail/dashboard/", "/mail/accounts/", "/rules/", "/tags/", "/mail/search/?q=agenda", "/mail/drafts/",
        "/mail/settings/replies/",
    ):  # fmt: skip
        page.goto(path)
        shot(path.strip("/").replace("/", "-").replace("?", "-"))
        assert_no_sideways_scroll(page)


def test_keyboard_shortcuts_move_open_search_and_mark_done(live_server, dovecot, imap_user, page: Page, shot):
    eve = phone_user_with_mail(dovecot, imap_user)
    from mail.models import MailAccount

    analysis_tasks.analyse_account(str(MailAccount.objects.get(owner=eve.user).pk))
    log_in(page, eve)
    page.goto("/mail/")
    page.keyboard.press("j")
    page.keyboard.press("j")
    rows = page.locator("tr[data-message]")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bis-current\b"))
    shot("list-with-selection")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/mail/messages/"))
    page.keyboard.press("e")
    expect(page.get_by_text("Marked done")).to_be_visible()
    page.keyboard.press("/")
    expect(page.locator("#top-search")).to_be_focused()


def test_tag_a_message_write_and_test_a_rule_search_and_correct_a_score(
    live_server, dovecot, imap_user, page: Page, shot
):
    eve = phone_user_with_mail(dovecot, imap_user)
    from mail.models import MailAccount

    analysis_tasks.analyse_account(str(MailAccount.objects.get(owner=eve.user).pk))  # what the worker does after sync
    log_in(page, eve)

    # Create a tag and put it on a message from its page.
    page.goto("/tags/")
    page.get_by_label("Name").fill("Planning")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Tag “Planning” created.")).to_be_visible()
    page.goto("/mail/")
    page.get_by_role("link", name=re.compile(r"the agenda for Thursday")).click()
    page.get_by_label("Add a tag").select_option(label="Planning")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("button", name="Remove tag Planning")).to_be_visible()
    shot("tagged")

    # Correct the analysis: the page says it was corrected.
    page.get_by_text("Correct this analysis").click()
    page.get_by_label("Urgency", exact=True).select_option("3")
    page.get_by_label("Importance", exact=True).select_option("3")
    page.get_by_role("button", name="Save correction").click()
    expect(page.get_by_text("Urgency 3 · Importance 3")).to_be_visible()
    expect(page.get_by_text("corrected by you")).to_be_visible()
    shot("corrected")

    # Write a rule without JSON and see its dry-run.
    page.goto("/rules/new/")
    page.get_by_label("Name").fill("Invoices")
    page.get_by_label("Condition 1 field").select_option(label="Subject")
    page.get_by_label("Condition 1 test").select_option("contains")
    page.get_by_label("Condition 1 value", exact=True).fill("invoice")
    page.get_by_label("Action 1", exact=True).select_option("flag")
    page.get_by_role("button", name="Save and test").click()
    expect(page.get_by_test_id("dry-run-summary")).to_contain_text("Would match 1 of 3")
    expect(page.get_by_role("link", name="Invoice")).to_be_visible()
    shot("rule-dry-run")

    # Search the encrypted mail from the top bar.
    page.get_by_label("Search mail").fill("agenda thursday")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("search-count")).to_contain_text("1 message")
    expect(page.get_by_role("link", name=re.compile(r"the agenda for Thursday"))).to_be_visible()
    shot("search")


def test_dark_mode_follows_the_system_setting(live_server, page: Page, shot):
    page.goto("/accounts/login/")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    page.reload()
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    shot("login-dark")

    def brightness(rgb: str) -> float:
        r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
        return (r + g + b) / 3

    assert brightness(light) > 200 and brightness(dark) < 60, (light, dark)


def test_reply_rewrite_in_a_style_and_send(celery_worker, live_server, dovecot, imap_user, smtp_sink, page: Page, shot):
    dovecot.deliver(imap_user, make_raw(1, subject="Can you come on Friday?", sender="anna@example.test"))
    frank = create_test_user("frank")
    account = create_account(
        frank.user, imap_user, dovecot, name="Work", smtp_host="127.0.0.1", smtp_port=smtp_sink.port,
        smtp_security="plain",
    )  # fmt: skip
    assert run_sync(account).status == SyncRun.Status.SUCCESS
    page.set_viewport_size(PHONE)
    log_in(page, frank)
    page.goto("/mail/")
    page.get_by_role("link", name="Can you come on Friday?").click()
    expect(page.get_by_role("button", name="Reply", exact=True)).to_be_visible()
    page.keyboard.press("r")  # the shortcut for the Reply button
    expect(page).to_have_url(re.compile(r"/mail/drafts/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Reply")
    expect(page.get_by_label("To", exact=True)).to_have_value("Sender 1 <anna@example.test>")
    expect(page.get_by_label("Subject")).to_have_value("Re: Can you come on Friday?")
    assert_page_basics(page)
    assert_no_sideways_scroll(page)
    shot("compose-375")

    # The style picker rewrites the text in place (htmx), the rest of the form stays as typed.
    page.get_by_label("Subject").fill("Re: Friday")
    page.get_by_label("Style").select_option("decline")
    page.get_by_role("button", name="Write the text again in this style").click()
    body = page.get_by_label("Message")
    expect(body).to_have_value(re.compile(r"Unfortunately I have to decline"))
    expect(page.get_by_label("Subject")).to_have_value("Re: Friday")
    body.fill("Sorry, I cannot make it on Friday.\n\nFrank")
    shot("compose-declined")

    # Send: the status polls until the worker has sent it, then the page shows the result.
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#draft-status")).to_have_attribute("data-status", "sent", timeout=30_000)
    expect(page.locator("pre.text-body")).to_contain_text("Sorry, I cannot make it on Friday.")
    shot("sent")
    [delivered] = smtp_sink.wait_for_messages(1)
    assert delivered.rcpt_tos == ["anna@example.test"] and b"Subject: Re: Friday" in delivered.data
    wait_for(lambda: srv.message_count(dovecot, imap_user, "Sent") == 1, 15, "the copy in Sent")
    assert Draft.objects.get().status == "sent"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Drafts").click()
    expect(page.locator("tr[data-draft]")).to_have_count(1)
    expect(page.locator("tr[data-draft]")).to_contain_text("sent")
    assert_no_sideways_scroll(page)
