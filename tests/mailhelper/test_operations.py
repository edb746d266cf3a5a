"""The operator page (/ops/), the alerts check_deploy prints, and the operations figures in /metrics."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from analysis.models import MessageAnalysis
from mail.models import MailAccount, SyncRun
from mailhelper import operations
from tests.plugins.accounts import create_test_user, verified_client
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db

SECRET_SUBJECT = "Quarterly figures nobody else may read"


@pytest.fixture
def operator():
    person = create_test_user("operator")
    person.user.is_staff = True
    person.user.save(update_fields=["is_staff"])
    return person


def _account(owner, name: str, **fields) -> MailAccount:
    return MailAccount.objects.create(
        owner=owner, name=name, email_address=f"{name}@example.test", imap_host="mail.example.test",
        imap_username=name, **fields,
    )  # fmt: skip


def _run(account: MailAccount, status: str, ago: timedelta, kind: str = "") -> SyncRun:
    run = SyncRun.objects.create(account=account, status=status, error_kind=kind, error="x" if kind else "")
    finished = timezone.now() - ago
    SyncRun.objects.filter(pk=run.pk).update(finished_at=finished, queued_at=finished)
    return run


def _beat_ticked(ago: timedelta = timedelta(0)) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.update_or_create(
        name="test tick", defaults={"task": "mail.settle_stale_sync_runs", "interval": every}
    )
    PeriodicTask.objects.filter(name="test tick").update(last_run_at=timezone.now() - ago)


# --- who may see it --------------------------------------------------------------------------------


def test_the_page_is_for_staff_only_and_404_for_everybody_else(operator, alice, client):
    url = reverse("operations")
    assert verified_client(alice).get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("accounts:login"))
    half = create_test_user("half")
    half.user.is_staff = True
    half.user.save(update_fields=["is_staff"])
    client.force_login(half.user)  # password given, no second factor yet
    assert client.get(url).status_code == 302
    staff = verified_client(operator).get(url)
    assert staff.status_code == 200 and "Operations" in staff.content.decode()


def test_the_admin_index_links_to_it_and_the_nav_shows_it_to_staff_only(operator, alice):
    staff = verified_client(operator)
    operator.user.is_superuser = True
    operator.user.save(update_fields=["is_superuser"])
    assert reverse("operations") in staff.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("operations")}"' in staff.get(reverse("accounts:settings")).content.decode()
    users_page = verified_client(alice).get(reverse("accounts:settings")).content.decode()
    assert f'href="{reverse("operations")}"' not in users_page


# --- what it shows ---------------------------------------------------------------------------------


def test_failures_count_only_since_the_last_successful_sync(alice):
    account = _account(alice.user, "work", last_sync_at=timezone.now() - timedelta(hours=3))
    _run(account, "failed", timedelta(hours=5), SyncRun.ErrorKind.LOGIN)  # before the success: forgiven
    _run(account, "success", timedelta(hours=3))
    _run(account, "failed", timedelta(hours=2), SyncRun.ErrorKind.LOGIN)
    _run(account, "interrupted", timedelta(hours=1), SyncRun.ErrorKind.INTERRUPTED)
    never = _account(alice.user, "never")
    _run(never, "failed", timedelta(minutes=5), SyncRun.ErrorKind.NETWORK)
    healthy = _account(alice.user, "healthy", last_sync_at=timezone.now())
    rows = {a.name: a for a in operations.accounts()}
    assert (rows["work"].failures, rows["work"].last_error_kind) == (2, "interrupted")
    assert (rows["never"].failures, rows["never"].last_error_kind) == (1, "network")
    assert (rows["healthy"].failures, rows["healthy"].last_error_kind) == (0, None)
    assert healthy.pk in {a.pk for a in operations.accounts()}


def test_every_sort_order_sorts(alice, bob):
    now = timezone.now()
    old = _account(bob.user, "old", last_sync_at=now - timedelta(days=2))
    fresh = _account(alice.user, "fresh", last_sync_at=now)
    never = _account(alice.user, "never")
    broken = _account(bob.user, "broken", last_sync_at=now - timedelta(minutes=1), status="needs_attention")

    def order(sort):
        return [a.name for a in operations.accounts(sort)]

    assert order("lag") == ["never", "old", "broken", "fresh"]
    assert order("attention")[0] == "broken"
    assert order("owner") == ["fresh", "never", "broken", "old"]  # alice's, then bob's, by name
    assert order("newest") == ["broken", "never", "fresh", "old"]
    assert order("no-such-sort") == order(operations.DEFAULT_SORT)
    assert {old.pk, fresh.pk, never.pk, broken.pk} == {a.pk for a in operations.accounts()}


def test_the_page_shows_health_without_mail_content_in_constant_queries(operator, alice):
    first = _account(alice.user, "first", last_sync_at=timezone.now())
    _run(first, "failed", timedelta(0), SyncRun.ErrorKind.NETWORK)
    staff = verified_client(operator)
    url = reverse("operations") + "?sort=lag"
    staff.get(url)  # session, content types and the like cached

    with CaptureQueriesContext(connection) as few:
        page = staff.get(url)
    body = page.content.decode()
    row = re.search(rf'data-testid="account-{first.pk}".*?</tr>', body, re.S).group(0)
    assert "first" in row and "alice" in row and "server unreachable" in row
    for n in range(30):
        account = _account(alice.user, f"more{n}")
        _run(account, "failed", timedelta(minutes=n), SyncRun.ErrorKind.LOGIN)
    with CaptureQueriesContext(connection) as many:
        assert staff.get(url).status_code == 200
    assert len(many) == len(few), "a query per account row"


def test_the_page_is_paginated_and_keeps_its_sort(operator, alice):
    MailAccount.objects.bulk_create(
        MailAccount(owner=alice.user, name=f"a{n:02}", email_address="a@example.test", imap_host="h", imap_username="u")
        for n in range(51)
    )
    staff = verified_client(operator)
    first = staff.get(reverse("operations") + "?sort=owner").content.decode()
    assert "Page 1 of 2" in first and "?sort=owner&amp;page=2" in first
    second = staff.get(reverse("operations") + "?sort=owner&page=2").content.decode()
    assert ">a50<" in second and ">a00<" not in second


def test_a_real_login_failure_is_shown_as_a_login_error(operator, alice, dovecot, imap_user):
    dovecot.deliver(imap_user, make_raw(1, subject=SECRET_SUBJECT))
    good = create_account(alice.user, imap_user, dovecot, name="good")
    assert run_sync(good).status == "success"
    wrong = create_account(alice.user, imap_user, dovecot, name="wrong", imap_password="not-the-password")
    assert run_sync(wrong).error_kind == SyncRun.ErrorKind.LOGIN
    closed = create_account(alice.user, imap_user, dovecot, name="closed", imap_port=1)
    assert run_sync(closed).error_kind == SyncRun.ErrorKind.NETWORK

    body = verified_client(operator).get(reverse("operations") + "?sort=attention").content.decode()
    rows = {name: re.search(rf">{name}</a>.*?</tr>", body, re.S).group(0) for name in ("good", "wrong", "closed")}
    assert "login refused" in rows["wrong"] and "needs attention" in rows["wrong"]
    assert "server unreachable" in rows["closed"]
    assert "none" in rows["good"]
    assert SECRET_SUBJECT not in body and imap_user.password not in body


# --- alerts ----------------------------------------------------------------------------------------


def test_alerts_name_failing_accounts_an_old_backlog_and_a_silent_beat(alice):
    day_ago = timezone.now() - timedelta(days=2)
    failing = _account(alice.user, "failing", last_sync_at=day_ago)
    _run(failing, "failed", timedelta(hours=1), SyncRun.ErrorKind.LOGIN)
    recent = _account(alice.user, "recent", last_sync_at=timezone.now() - timedelta(hours=2))
    _run(recent, "failed", timedelta(hours=1), SyncRun.ErrorKind.NETWORK)  # failing, but not for a day
    disabled = _account(alice.user, "disabled", last_sync_at=day_ago, enabled=False)
    _run(disabled, "failed", timedelta(hours=1), SyncRun.ErrorKind.LOGIN)

    found = {alert.key: alert.text for alert in operations.alerts()}
    assert set(found) == {"failing_accounts", "beat_silent"}
    assert found["failing_accounts"] == f"1 account(s) failing for over a day: {failing.pk}"
    assert "never sent a task" in found["beat_silent"]

    _beat_ticked(timedelta(minutes=40))
    assert "for 40 min" in {a.key: a.text for a in operations.alerts()}["beat_silent"]
    _beat_ticked()
    assert "beat_silent" not in {a.key for a in operations.alerts()}


def test_an_analysis_backlog_older_than_an_hour_is_an_alert(alice, five_synced):
    _beat_ticked()
    assert operations.analysis_backlog().pending == 5
    assert not operations.alerts()
    MessageAnalysis.objects.update(queued_at=timezone.now() - timedelta(hours=2))
    texts = [a.text for a in operations.alerts()]
    assert texts == [
        "5 message(s) wait for analysis, the oldest for 2 h 0 min: is a worker consuming the 'analysis' queue?"
    ]
    MailAccount.objects.filter(pk=five_synced.pk).update(status=MailAccount.Status.LOCKED)
    assert operations.analysis_backlog().pending == 0, "mail of a locked account waits by design"


def test_check_deploy_prints_the_alerts_as_warnings_without_failing(alice):
    failing = _account(alice.user, "failing", last_sync_at=timezone.now() - timedelta(days=3))
    _run(failing, "failed", timedelta(hours=1), SyncRun.ErrorKind.LOGIN)
    out = io.StringIO()
    call_command("check_deploy", "--skip-celery", stdout=out, no_color=True)  # raises on exit code 1
    output = out.getvalue()
    assert re.search(rf"failing_accounts\s+WARN\s+1 account\(s\) failing for over a day: {failing.pk}", output)
    assert re.search(r"beat_silent\s+WARN\s+celery beat has never sent a task", output)
    assert "All checks passed." in output


# --- metrics ---------------------------------------------------------------------------------------


def test_metrics_have_queue_lengths_and_a_sync_lag_histogram(client, alice):
    now = timezone.now()
    for name, ago in [("a", timedelta(minutes=1)), ("b", timedelta(minutes=10)), ("c", timedelta(days=3))]:
        _account(alice.user, name, last_sync_at=now - ago)
    _account(alice.user, "never")
    _account(alice.user, "off", last_sync_at=now - timedelta(days=9), enabled=False)
    body = client.get(reverse("metrics")).content.decode()
    for queue in operations.queue_names():
        assert re.search(rf'^mailhelper_queue_length{{queue="{queue}"}} \d+$', body, re.M), queue
    buckets = dict(re.findall(r'^mailhelper_sync_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$', body, re.M))
    assert buckets == {"300": "1", "900": "2", "3600": "2", "21600": "2", "86400": "2", "+Inf": "3"}
    assert re.search(r"^mailhelper_sync_lag_seconds_count 3$", body, re.M)
    lag_sum = float(re.search(r"^mailhelper_sync_lag_seconds_sum (\S+)$", body, re.M).group(1))
    assert 3 * 86400 + 660 <= lag_sum < 3 * 86400 + 700
    assert "# TYPE mailhelper_sync_lag_seconds histogram" in body
