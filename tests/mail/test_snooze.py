"""Reply tracking and snooze (#18): "To reply", "Awaiting reply" and "Snoozed" lists, snooze and follow-up
reminders woken by the one beat row (mail.wake_due) through a real Celery worker, moves and flags
written back to the real Dovecot."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analysis.models import MessageAnalysis
from mail import actions, snooze, tasks
from mail.models import Message, PendingAction
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import create_account, run_sync, select_folders

pytestmark = pytest.mark.django_db
ME = "me@example.test"


def raw(n: int, *, sender: str, subject: str, date: datetime, message_id: str, in_reply_to: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ME if sender != ME else "anna@example.test", subject
    msg["Date"], msg["Message-ID"] = format_datetime(date), message_id
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(f"Message {n}: could you tell me by Friday?\n")
    return bytes(msg)


def analysed(message: Message, category: str) -> None:
    MessageAnalysis.objects.filter(message=message).update(
        state="done", final_category=category, final_urgency=2, final_importance=2, final_spam=False
    )


@pytest.fixture
def account(mail_account):
    select_folders(mail_account, "INBOX", "Sent", "Archive")
    return mail_account


@pytest.fixture
def question(account, dovecot, imap_user) -> Message:
    """A question from Anna in the inbox, analysed as expecting a reply, already read."""
    when = datetime.now(UTC) - timedelta(days=1)
    dovecot.deliver(
        imap_user, raw(1, sender="anna@example.test", subject="Budget?", date=when, message_id="<q1@x>"), flags="S"
    )
    assert run_sync(account).status == "success"
    message = Message.objects.get(account=account, folder__name="INBOX")
    analysed(message, "reply_expected")
    return message


def list_subjects(client, **params) -> list[str]:
    html = client.get(reverse("mail:list"), params).content.decode()
    return [s for s in ("Budget?", "Offer sent", "Later") if f">{s}</a>" in html]


def test_to_reply_lists_unanswered_questions_and_the_dashboard_counts_them(alice_client, question):
    assert list_subjects(alice_client, view="to_reply") == ["Budget?"]
    html = alice_client.get(reverse("mail:dashboard")).content.decode()
    assert 'data-testid="to-reply">To reply <span class="count">1</span>' in html

    Message.objects.filter(pk=question.pk).update(answered=True)
    assert list_subjects(alice_client, view="to_reply") == []
    assert "run a sync" not in alice_client.get(reverse("mail:list"), {"view": "to_reply"}).content.decode()


def test_snoozing_hides_a_message_from_the_open_lists_until_it_wakes(alice_client, question):
    response = alice_client.post(reverse("mail:snooze", args=[question.pk]), {"snooze": "tomorrow"})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.snoozed_until == snooze.preset("tomorrow") and question.snoozed_until > timezone.now()

    assert list_subjects(alice_client, open="1") == [] and list_subjects(alice_client, view="to_reply") == []
    assert list_subjects(alice_client, view="snoozed") == ["Budget?"]
    html = alice_client.get(reverse("mail:dashboard")).content.decode()
    assert 'data-testid="snoozed">Snoozed <span class="count">1</span>' in html
    page = alice_client.get(reverse("mail:message", args=[question.pk])).content.decode()
    assert 'data-testid="snoozed">Snoozed until' in page

    alice_client.post(reverse("mail:snooze", args=[question.pk]), {"snooze": "cancel"})
    assert list_subjects(alice_client, view="to_reply") == ["Budget?"]


def test_a_time_in_the_past_or_unreadable_is_refused(alice_client, question):
    for data in ({"snooze": "custom", "until": "2020-01-01T10:00"}, {"snooze": "custom", "until": "soon"}, {}):
        alice_client.post(reverse("mail:snooze", args=[question.pk]), data)
    question.refresh_from_db()
    assert question.snoozed_until is None


@pytest.mark.django_db(transaction=True)  # the worker reads what the test committed
def test_a_woken_message_is_unread_and_back_in_the_inbox_here_and_on_the_server(
    celery_worker, alice_client, question, account, dovecot, imap_user
):
    archive = account.folders.get(name="Archive")
    actions.apply([question], "move", archive)  # archived meanwhile (on the phone, by a rule)
    # The worker's write-back task (queued by apply) moves it; one here at the same moment would find
    # it running (actions.WriteBackRunning), so wait for it.
    deadline = time.monotonic() + 30
    while PendingAction.objects.filter(account=account, done_at__isnull=True).exists():
        assert time.monotonic() < deadline, "the worker's write-back did not run"
        time.sleep(0.1)
    assert not PendingAction.objects.filter(account=account).exclude(error="").exists()
    assert run_sync(account).status == "success"
    moved = Message.objects.get(account=account, message_id="q1@x")
    snooze.snooze(moved, timezone.now() + timedelta(minutes=5))
    Message.objects.filter(pk=moved.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))

    assert tasks.wake_due.delay().get(timeout=30) == {"snoozed": 1, "reminded": 0, "answered": 0}

    moved.refresh_from_db()
    assert moved.snoozed_until is None and not moved.seen and moved.folder.special_use == "inbox"
    actions.write_back(account.pk)
    assert (
        srv.subjects(dovecot, imap_user, "INBOX") == ["Budget?"]
        and srv.message_count(dovecot, imap_user, "Archive") == 0
    )
    assert list_subjects(alice_client, view="to_reply") == ["Budget?"]


def test_one_beat_row_dispatches_every_message(question):
    rows = PeriodicTask.objects.filter(task="mail.wake_due")
    assert rows.count() == 1 and rows.get().interval.every == 1 and rows.get().interval.period == "minutes"
    snooze.snooze(question, timezone.now() + timedelta(hours=1))
    assert PeriodicTask.objects.filter(task="mail.wake_due").count() == 1


@pytest.fixture
def sent_offer(account, dovecot, imap_user) -> Message:
    """The user's own mail in Sent, a week old, expecting an answer."""
    when = datetime.now(UTC) - timedelta(days=7)
    dovecot.deliver(
        imap_user, raw(2, sender=ME, subject="Offer sent", date=when, message_id="<offer@x>"), folder="Sent", flags="S"
    )
    assert run_sync(account).status == "success"
    message = Message.objects.get(account=account, folder__name="Sent")
    analysed(message, "reply_expected")
    return message


def test_awaiting_reply_until_someone_answers(alice_client, sent_offer, account, dovecot, imap_user):
    assert list_subjects(alice_client, view="awaiting") == ["Offer sent"]
    html = alice_client.get(reverse("mail:dashboard")).content.decode()
    assert 'data-testid="awaiting">Awaiting reply <span class="count">1</span>' in html

    answer = raw(
        3,
        sender="anna@example.test",
        subject="Re: Offer sent",
        date=datetime.now(UTC),
        message_id="<a@x>",
        in_reply_to="<offer@x>",
    )
    dovecot.deliver(imap_user, answer)
    assert run_sync(account).status == "success"
    assert list_subjects(alice_client, view="awaiting") == []


def test_a_follow_up_flags_unanswered_mail_when_its_day_comes(alice_client, sent_offer, account, dovecot, imap_user):
    page = alice_client.get(reverse("mail:message", args=[sent_offer.pk])).content.decode()
    assert "Remind me if no answer by" in page
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    alice_client.post(reverse("mail:snooze", args=[sent_offer.pk]), {"follow_up": tomorrow})
    sent_offer.refresh_from_db()
    assert timezone.localtime(sent_offer.follow_up_at).hour == 8

    Message.objects.filter(pk=sent_offer.pk).update(follow_up_at=timezone.now() - timedelta(minutes=1))
    assert snooze.wake_due().reminded == 1
    sent_offer.refresh_from_db()
    assert sent_offer.flagged and sent_offer.follow_up_at is None
    assert PendingAction.objects.filter(message=sent_offer, kind="flag").exists()
    actions.write_back(account.pk)
    assert "\\Flagged" in next(iter(srv.server_flags(dovecot, imap_user, "Sent").values()))


def test_an_answer_in_time_clears_the_reminder_without_a_flag(sent_offer, account, dovecot, imap_user):
    snooze.set_follow_up(sent_offer, timezone.now() + timedelta(days=1))
    answer = raw(
        3,
        sender="anna@example.test",
        subject="Re: Offer sent",
        date=datetime.now(UTC),
        message_id="<a@x>",
        in_reply_to="<offer@x>",
    )
    dovecot.deliver(imap_user, answer)
    assert run_sync(account).status == "success"
    Message.objects.filter(pk=sent_offer.pk).update(follow_up_at=timezone.now() - timedelta(minutes=1))

    woken = snooze.wake_due()

    sent_offer.refresh_from_db()
    assert (woken.answered, woken.reminded) == (1, 0) and not sent_offer.flagged and sent_offer.follow_up_at is None


def test_reminders_are_for_mail_the_user_sent(question):
    with pytest.raises(snooze.SnoozeError, match="mail you sent"):
        snooze.set_follow_up(question, timezone.now() + timedelta(days=1))


def test_another_users_message_cannot_be_snoozed(alice_client, bob, imap_user, dovecot):
    dovecot.deliver(
        imap_user, raw(9, sender="x@example.test", subject="Later", date=datetime.now(UTC), message_id="<b@x>")
    )
    bobs = create_account(bob.user, imap_user, dovecot)
    assert run_sync(bobs).status == "success"
    theirs = Message.objects.get(account=bobs)
    for data in ({"snooze": "tomorrow"}, {"follow_up": "2030-01-01"}):
        assert alice_client.post(reverse("mail:snooze", args=[theirs.pk]), data).status_code == 404
    theirs.refresh_from_db()
    assert theirs.snoozed_until is None and theirs.follow_up_at is None


def test_the_dashboards_counts_in_one_query_match_the_lists(question, sent_offer, account, dovecot, imap_user, alice):
    from analysis import queries as inbox_queries
    from mail import queries

    dovecot.deliver(imap_user, raw(4, sender="bob@example.test", subject="Later", date=datetime.now(UTC),
                                   message_id="<later@x>"))  # fmt: skip
    assert run_sync(account).status == "success"
    later = Message.objects.get(account=account, message_id="later@x")
    MessageAnalysis.objects.filter(message=later).delete()  # a message with no analysis still counts as snoozed
    snooze.snooze(later, timezone.now() + timedelta(hours=1))

    counts = inbox_queries.tracking_counts(alice.user)
    live = queries.messages_of(alice.user).filter(expunged_at__isnull=True)
    lists = {
        "to_reply": inbox_queries.to_reply(live).count(),  # the question, not the offer in Sent
        "awaiting": inbox_queries.awaiting_reply(live, alice.user).count(),
        "snoozed": live.filter(snoozed_until__isnull=False).count(),
    }
    assert counts == lists == {"to_reply": 1, "awaiting": 1, "snoozed": 1}
