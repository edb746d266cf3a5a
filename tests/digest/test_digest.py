"""The daily digest on real parts: synced and analysed mail, an invitation, the beat row, the SMTP sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts import keyring
from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis
from digest import sending
from digest.models import DigestSettings
from digest.tasks import send_digest
from events.models import Event
from tests.plugins.accounts import create_test_user, verified_client
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db

URGENT = "URGENT: contract needed today"


@pytest.fixture
def account(alice, dovecot, imap_user, smtp_sink):
    return create_account(
        alice.user, imap_user, dovecot, smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security="plain"
    )


@pytest.fixture
def analysed(account, dovecot, imap_user):
    for n in range(3):
        dovecot.deliver(imap_user, make_raw(n, subject=f"Routine note {n}"))
    dovecot.deliver(imap_user, make_raw(10, subject=URGENT, sender="boss@work.example"))
    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))
    urgent = MessageAnalysis.objects.get(message__from_address="boss@work.example")
    # The cell the digest reads, set as a user correction would: the test is about the digest, not the scores.
    urgent.corrected_urgency, urgent.corrected_importance = 3, 3
    urgent.summary = "The boss wants the signed contract by three."
    urgent.refresh_final()
    urgent.save()
    return urgent


def enable(alice, account, **fields) -> DigestSettings:
    prefs = DigestSettings.objects.create(owner=alice.user, enabled=True, account=account, **fields)
    return prefs


def sent_mail(smtp_sink):
    [sent] = smtp_sink.messages
    return sent, message_from_bytes(sent.data, policy=default_policy)


def test_the_settings_page_keeps_one_crontab_row_in_the_users_zone(alice_client, alice, account):
    response = alice_client.post(
        reverse("digest:settings"),
        {"enabled": "on", "hour": "7", "time_zone": "Europe/Berlin", "account": str(account.pk)},
    )
    assert response.status_code == 302
    task = PeriodicTask.objects.get(name=f"digest {alice.user.pk}")
    assert task.enabled and task.task == "digest.send_digest"
    assert json.loads(task.kwargs) == {"owner_id": alice.user.pk}
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == ("7", "0", "Europe/Berlin")
    assert "every day at 07:00 (Europe/Berlin)" in alice_client.get(response.url).content.decode()

    alice_client.post(reverse("digest:settings"), {"hour": "18", "time_zone": "UTC"})
    task.refresh_from_db()
    assert not task.enabled and task.crontab.hour == "18"
    assert PeriodicTask.objects.filter(task="digest.send_digest").count() == 1


def test_another_users_account_is_not_a_choice(alice, account, bob):
    response = verified_client(bob).post(
        reverse("digest:settings"), {"enabled": "on", "hour": "7", "time_zone": "UTC", "account": str(account.pk)}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not DigestSettings.objects.filter(owner=bob.user, account=account).exists()


def test_the_digest_lists_what_needs_the_user_with_links_and_no_content(alice, account, analysed, smtp_sink, settings):
    settings.MAILHELPER_BASE_URL = "https://mail.example.org"
    Event.objects.create(
        owner=alice.user, message=analysed.message, method="REQUEST", uid="u1", uid_hash="1" * 64,
        summary="Quarterly planning", organizer_email="max@contoso.example",
        starts_at=timezone.now() + timedelta(days=2), ends_at=timezone.now() + timedelta(days=2, hours=1),
    )  # fmt: skip
    enable(alice, account)
    assert send_digest(alice.user.pk) == "sent"

    sent, mail = sent_mail(smtp_sink)
    assert sent.mail_from == "me@example.test" and sent.rcpt_tos == ["me@example.test"]
    assert mail["Auto-Submitted"] == "auto-generated" and mail["Subject"].startswith("Mailhelper: ")
    text = mail.get_body(("plain",)).get_content()
    assert "Urgent and important (1)" in text and URGENT in text
    assert f"https://mail.example.org/mail/messages/{analysed.message_id}/" in text
    assert "Invitations to answer (1)" in text and "Quarterly planning" in text
    assert "Routine note" not in text  # not in a top cell
    assert "signed contract by three" not in mail.as_string()  # summaries only when opted in
    assert "https://mail.example.org/digest/" in text
    html = mail.get_body(("html",)).get_content()
    assert f'href="https://mail.example.org/mail/messages/{analysed.message_id}/"' in html

    assert send_digest(alice.user.pk) == "already sent today"  # beat firing twice mails once
    assert len(smtp_sink.messages) == 1


def test_summaries_are_included_only_on_opt_in(alice, account, analysed, smtp_sink):
    enable(alice, account, include_summaries=True)
    sending.send(alice.user.pk)
    assert "signed contract by three" in sent_mail(smtp_sink)[1].get_body(("plain",)).get_content()


def test_nothing_to_report_sends_nothing_but_the_test_button_does(alice, alice_client, account, smtp_sink):
    enable(alice, account)
    assert send_digest(alice.user.pk) == "nothing to report"
    assert smtp_sink.messages == []
    alice_client.post(reverse("digest:test"))
    assert len(smtp_sink.messages) == 1


def test_off_locked_and_unsendable_are_reported_not_crashed(alice, account, analysed, smtp_sink):
    assert send_digest(alice.user.pk) == "off"
    prefs = enable(alice, account)
    account.smtp_host = ""
    account.save()
    assert send_digest(alice.user.pk) == "failed"
    prefs.refresh_from_db()
    assert "has an SMTP server" in prefs.last_error and smtp_sink.messages == []

    strict = create_test_user("strict-digest", strict=True)
    DigestSettings.objects.create(owner=strict.user, enabled=True)
    keyring.drop_session_key(strict.user)  # logged out
    assert send_digest(strict.user.pk) == "locked"


def test_the_day_is_the_users_day(alice, account, analysed, smtp_sink):
    prefs = enable(alice, account, time_zone="Pacific/Auckland")
    late = datetime(2027, 1, 15, 10, 30, tzinfo=UTC)  # 23:30 in Auckland
    assert sending.send(alice.user.pk, late) == "sent"
    prefs.refresh_from_db()
    assert sending.send(alice.user.pk, late + timedelta(hours=1)) == "sent"  # 00:30 the next day there
    assert len(smtp_sink.messages) == 2
