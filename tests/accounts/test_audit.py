"""The user's audit log: every kind recorded through the real views, with IP and user agent, no secret in
any row, only one's own events on one's page, purged after the retention period, read-only in the admin."""

import io
import json
import logging
import re
import time
import zipfile
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit
from accounts.models import AuditEvent, User
from accounts.tasks import purge_audit_events
from tests.plugins.accounts import create_test_user, totp_code, verified_client

pytestmark = pytest.mark.django_db

Kind = AuditEvent.Kind
IP = "203.0.113.7"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AuditTestBrowser/1.0 " + "x" * 400
NEW_PASSWORD = "a brand new passphrase 77"


def browser(client: Client | None = None, ip: str = IP, user_agent: str = BROWSER) -> Client:
    """A client whose every request comes from `ip` with `user_agent`."""
    client = client or Client()
    client.defaults.update(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent)
    return client


def kinds(user) -> list[str]:
    return list(AuditEvent.objects.filter(user=user).order_by("at", "pk").values_list("kind", flat=True))


def assert_no_secret(*secrets: str) -> None:
    """No row of the audit table, read as text column by column, holds any of the secrets."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM accounts_auditevent e")
        rows = [row[0] for row in cursor.fetchall()]
    assert rows, "nothing recorded: the check would pass vacuously"
    for secret in secrets:
        assert secret and not any(secret in row for row in rows), "a secret is in the audit log"


def password_step(client, test_user, password=None):
    return client.post(
        reverse("accounts:login"), {"username": test_user.user.username, "password": password or test_user.password}
    )


def test_sign_in_outcomes_are_recorded_with_ip_and_truncated_user_agent(alice):
    client = browser()
    password_step(client, alice, password="not-the-password-123")
    client.post(reverse("accounts:login"), {"username": "nobody-such", "password": "whatever-456"})
    assert AuditEvent.objects.count() == 1  # the unknown username left no row anywhere
    password_step(client, alice)
    assert kinds(alice.user) == [Kind.LOGIN_FAILED]  # the password alone does not complete a login
    client.post(reverse("accounts:2fa-verify"), {"token": "000000"})
    time.sleep(1.1)  # django-otp throttles the device for a second after a wrong code
    code = totp_code(alice.device)
    assert client.post(reverse("accounts:2fa-verify"), {"token": code}).status_code == 302

    assert kinds(alice.user) == [Kind.LOGIN_FAILED, Kind.LOGIN_FAILED, Kind.LOGIN]
    failed_password, failed_code, login = AuditEvent.objects.filter(user=alice.user).order_by("at", "pk")
    assert failed_password.detail == {"step": "password"} and failed_code.detail == {"step": "totp"}
    for event in (failed_password, failed_code, login):
        assert event.ip == IP
        assert event.user_agent == BROWSER[:255] and len(event.user_agent) == 255
    assert_no_secret(alice.password, "not-the-password-123", code, alice.device.key, "nobody-such")


def test_lockout_by_password_and_by_code_and_refusal_while_locked(alice, bob, settings):
    settings.MAILHELPER_LOCKOUT_THRESHOLD = 2
    client = browser()
    password_step(client, alice, password="wrong-1")
    password_step(client, alice, password="wrong-2")
    assert kinds(alice.user) == [Kind.LOGIN_FAILED, Kind.LOCKED_OUT]
    assert password_step(client, alice).status_code == 403
    assert kinds(alice.user)[-1] == Kind.LOGIN_REFUSED_LOCKED

    # The second factor counts too: bob's password is known, his codes are not.
    other = browser()
    password_step(other, bob)
    other.post(reverse("accounts:2fa-verify"), {"token": "000000"})
    other.post(reverse("accounts:2fa-verify"), {"token": "111111"})
    assert kinds(bob.user) == [Kind.LOGIN_FAILED, Kind.LOCKED_OUT]
    assert AuditEvent.objects.get(user=bob.user, kind=Kind.LOCKED_OUT).detail == {"step": "totp"}
    assert_no_secret(alice.password, bob.password, "wrong-1", "wrong-2")


def test_a_locked_account_logs_one_refusal_per_lock_not_one_per_attempt(alice, settings):
    settings.MAILHELPER_LOCKOUT_THRESHOLD = 2
    client = browser()
    for attempt in ("wrong-1", "wrong-2", "wrong-3", "wrong-4", alice.password):
        password_step(client, alice, password=attempt)
    assert kinds(alice.user) == [Kind.LOGIN_FAILED, Kind.LOCKED_OUT, Kind.LOGIN_REFUSED_LOCKED]

    # The lock runs out; the next lock gets its own refusal row.
    User.objects.filter(pk=alice.user.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    for attempt in ("wrong-5", "wrong-6", "wrong-7", "wrong-8"):
        password_step(client, alice, password=attempt)
    assert kinds(alice.user)[3:] == [Kind.LOGIN_FAILED, Kind.LOCKED_OUT, Kind.LOGIN_REFUSED_LOCKED]
    assert len(kinds(alice.user)) == 6


def test_recovery_code_login_and_failures(alice):
    client = browser()
    password_step(client, alice)
    client.post(reverse("accounts:2fa-recovery"), {"code": "AAAA-BBBB-CCCC-DDDD"})
    time.sleep(1.1)  # the recovery device throttles for a second after a wrong code, like TOTP
    code = alice.recovery_codes[0]
    assert client.post(reverse("accounts:2fa-recovery"), {"code": code}).status_code == 302
    assert kinds(alice.user) == [Kind.LOGIN_FAILED, Kind.RECOVERY_LOGIN]
    failed, used = AuditEvent.objects.filter(user=alice.user).order_by("at", "pk")
    assert failed.detail == {"step": "recovery_code"}
    assert used.detail == {"codes_left": len(alice.recovery_codes) - 1} and used.ip == IP
    assert_no_secret(alice.password, *alice.recovery_codes)


def test_password_reset_with_a_recovery_code(alice):
    client = browser()
    form = {"username": "alice", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    client.post(reverse("accounts:recover"), {**form, "code": "AAAA-BBBB-CCCC-DDDD"})
    response = client.post(reverse("accounts:recover"), {**form, "code": alice.recovery_codes[1]})
    assert response.status_code == 302
    client.post(reverse("accounts:recover"), {**form, "username": "nobody-such", "code": alice.recovery_codes[2]})
    assert kinds(alice.user) == [Kind.LOGIN_FAILED, Kind.PASSWORD_RESET]
    assert AuditEvent.objects.get(kind=Kind.LOGIN_FAILED).detail == {"step": "password_reset"}
    assert AuditEvent.objects.count() == 2
    assert_no_secret(alice.password, NEW_PASSWORD, *alice.recovery_codes)


def test_two_factor_set_up(db):
    carol = create_test_user("carol", with_2fa=False)
    client = browser()
    client.force_login(carol.user)
    client.get(reverse("accounts:2fa-setup"))
    device = TOTPDevice.objects.get(user=carol.user, confirmed=False)
    code = totp_code(device)
    assert client.post(reverse("accounts:2fa-setup"), {"token": code}).status_code == 200
    assert kinds(carol.user) == [Kind.TWO_FACTOR_ENABLED]
    assert AuditEvent.objects.get().ip == IP
    assert_no_secret(carol.password, code, device.key)


def test_security_settings_and_export(alice):
    client = browser(verified_client(alice))
    change = {"old_password": alice.password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert client.post(reverse("accounts:password-change"), change).status_code == 302
    codes_page = client.post(reverse("accounts:regenerate-codes"), {"password": NEW_PASSWORD})
    assert codes_page.status_code == 200
    client.post(reverse("accounts:strict-mode"), {"password": NEW_PASSWORD, "strict_mode": "on"})
    client.post(reverse("accounts:strict-mode"), {"password": NEW_PASSWORD})
    export = client.post(reverse("export-data"))
    assert export.status_code == 200 and b"".join(export.streaming_content)
    assert kinds(alice.user) == [
        Kind.PASSWORD_CHANGED,
        Kind.RECOVERY_CODES_REGENERATED,
        Kind.STRICT_MODE_ON,
        Kind.STRICT_MODE_OFF,
        Kind.DATA_EXPORTED,
    ]
    assert set(AuditEvent.objects.values_list("ip", "user_agent")) == {(IP, BROWSER[:255])}
    new_codes = re.findall(r"<code>([A-Z0-9-]{19})</code>", codes_page.content.decode())
    assert len(new_codes) == len(alice.recovery_codes)
    assert_no_secret(alice.password, NEW_PASSWORD, *alice.recovery_codes, *new_codes)


def test_mail_account_added_changed_removed(alice, imap_user, dovecot):
    client = browser(verified_client(alice))
    form = {
        "name": "Work",
        "email_address": "me@example.test",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": imap_user.username,
        "imap_password_input": imap_user.password,
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "",
        "sync_interval_minutes": 5,
        "enabled": "on",
    }
    assert client.post(reverse("mail:account-add"), form).status_code == 302
    account = alice.user.mail_accounts.get()
    edited = {**form, "name": "Office", "imap_password_input": ""}
    assert client.post(reverse("mail:account-edit", args=[account.pk]), edited).status_code == 302
    assert client.post(reverse("mail:account-delete", args=[account.pk])).status_code == 302
    assert kinds(alice.user) == [Kind.MAIL_ACCOUNT_ADDED, Kind.MAIL_ACCOUNT_CHANGED, Kind.MAIL_ACCOUNT_DELETED]
    details = list(AuditEvent.objects.order_by("at", "pk").values_list("detail", flat=True))
    assert details == [{"account": "Work"}, {"account": "Office"}, {"account": "Office"}]
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "Mail account removed (account “Office”)" in page
    assert_no_secret(imap_user.password, alice.password)


def test_download_my_data_holds_my_security_log_and_nobody_elses(alice, bob):
    password_step(browser(), alice, password="typed-by-a-stranger")
    password_step(browser(ip="192.0.2.99", user_agent="BobsOwnBrowser/9"), bob, password="bobs-typo-1")
    export = browser(verified_client(alice)).post(reverse("export-data"))
    zf = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content)))
    [event] = json.loads(zf.read("security-log.json"))["events"]
    assert event["kind"] == Kind.LOGIN_FAILED and event["event"] == "Failed sign-in attempt"
    assert event["ip"] == IP and event["user_agent"] == BROWSER[:255] and event["detail"] == {"step": "password"}
    assert json.loads(zf.read("manifest.json"))["counts"]["security_events"] == 1
    log = zf.read("security-log.json").decode()
    assert "typed-by-a-stranger" not in log and alice.password not in log and "BobsOwnBrowser" not in log


def test_ip_comes_from_the_trusted_proxy_header_when_configured(alice, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    client = browser(ip="10.0.0.1")
    client.post(
        reverse("accounts:login"), {"username": "alice", "password": "wrong-1"}, headers={"x-real-ip": "198.51.100.4"}
    )
    assert AuditEvent.objects.get(user=alice.user).ip == "198.51.100.4"


def ip_from_client_header(request) -> str:
    """A RATELIMIT_IP_META_KEY function, as an operator behind an unusual proxy would write one."""
    return request.META["HTTP_X_CLIENT_ADDRESS"]


def test_ip_comes_from_the_operators_function_like_the_rate_limiter_reads_it(alice, settings):
    settings.RATELIMIT_IP_META_KEY = f"{__name__}.ip_from_client_header"
    client = browser(ip="10.0.0.1")
    client.post(
        reverse("accounts:login"),
        {"username": "alice", "password": "wrong-1"},
        headers={"x-client-address": "2001:db8::5"},
    )
    assert AuditEvent.objects.get(user=alice.user).ip == "2001:db8::5"


def test_my_page_shows_my_events_newest_first_and_never_another_users(alice, bob):
    empty = verified_client(alice).get(reverse("accounts:settings")).content.decode()
    assert 'data-testid="audit-log-empty"' in empty and "No security events recorded yet" in empty

    base = timezone.now() - timedelta(hours=1)
    for n in range(25):
        AuditEvent.objects.create(
            user=alice.user, kind=Kind.DATA_EXPORTED, at=base + timedelta(minutes=n), user_agent=f"AliceAgent-{n:02d}"
        )
    audit.record(bob.user, Kind.LOGIN, {"ip": "192.0.2.99", "user_agent": "BobsOwnBrowser/9"})
    client = verified_client(alice)
    first = client.get(reverse("accounts:settings")).content.decode()
    assert "AliceAgent-24" in first and "AliceAgent-05" in first and "AliceAgent-04" not in first
    assert first.index("AliceAgent-24") < first.index("AliceAgent-23")  # newest first
    assert "Page 1 of 2" in first and "audit-log-empty" not in first
    second = client.get(reverse("accounts:settings") + "?page=2").content.decode()
    assert "AliceAgent-04" in second and "AliceAgent-00" in second and "AliceAgent-05" not in second
    for html in (first, second):
        assert "BobsOwnBrowser" not in html and "192.0.2.99" not in html


def test_purge_removes_only_rows_past_the_retention(alice, settings):
    settings.MAILHELPER_AUDIT_DAYS = 30
    now = timezone.now()
    old = AuditEvent.objects.create(user=alice.user, kind=Kind.LOGIN, at=now - timedelta(days=31))
    recent = AuditEvent.objects.create(user=alice.user, kind=Kind.LOGIN, at=now - timedelta(days=29))
    assert purge_audit_events() == {"deleted": 1}
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AuditEvent.objects.filter(pk=old.pk).exists()

    settings.MAILHELPER_AUDIT_DAYS = 0  # keep forever
    assert audit.purge(now + timedelta(days=3650)) == 0 and AuditEvent.objects.count() == 1


def test_beat_runs_the_purge_daily():
    from mailhelper.celery import app

    row = PeriodicTask.objects.get(task="accounts.purge_audit_events")
    assert row.enabled and row.interval.every == 1 and row.interval.period == "days"
    assert "accounts.purge_audit_events" in app.tasks


def test_details_take_short_labels_only(alice):
    with pytest.raises(TypeError):
        audit.record(alice.user, Kind.LOGIN, None, secret=b"bytes are not a label")
    event = audit.record(alice.user, Kind.LOGIN, {"ip": "not an address"}, account="y" * 500)
    assert event.ip is None and event.detail == {"account": "y" * audit.MAX_DETAIL_TEXT}
    with pytest.raises(ValueError):
        audit.record(alice.user, "made_up_kind")


def test_account_deletion_takes_the_log_along_and_tells_the_operator(alice, caplog):
    client = browser(verified_client(alice))
    client.post(reverse("export-data"))
    assert AuditEvent.objects.filter(user=alice.user).exists()
    user_pk = alice.user.pk
    with caplog.at_level(logging.INFO, logger="accounts.deletion"):
        response = client.post(
            reverse("accounts:delete-account"), {"password": alice.password, "confirm_username": "alice"}
        )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(user_id=user_pk).exists()
    lines = [r.getMessage() for r in caplog.records if r.name == "accounts.deletion"]
    assert lines == [lines[0]] and f"user {user_pk} deleted" in lines[0]
    assert "alice" not in lines[0] and alice.password not in lines[0]


def test_admin_lists_filters_and_searches_read_only(operator, alice, bob):
    password_step(browser(), alice, password="wrong-typed-secret")
    audit.record(bob.user, Kind.DATA_EXPORTED, {"ip": "192.0.2.5", "user_agent": "BobAgent"})
    client = verified_client(operator)
    url = reverse("admin:accounts_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "alice" in page and "bob" in page and IP in page
    by_kind = client.get(url, {"kind__exact": Kind.DATA_EXPORTED}).content.decode()
    assert "BobAgent" in by_kind and IP not in by_kind
    by_name = client.get(url, {"q": "alice"}).content.decode()
    assert IP in by_name and "192.0.2.5" not in by_name
    event = AuditEvent.objects.get(user=alice.user)
    detail = client.get(reverse("admin:accounts_auditevent_change", args=[event.pk]))
    assert detail.status_code == 200 and "wrong-typed-secret" not in detail.content.decode()
    assert client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:accounts_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert verified_client(alice).get(url).status_code == 302  # not staff: sent to the admin login
