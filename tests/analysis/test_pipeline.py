"""Analysis of synced mail: pending rows, the matrix, corrections that teach, re-analysis, scoping."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from analysis import pipeline
from analysis import tasks as analysis_tasks
from analysis.models import LearnedClassifier, MessageAnalysis, TrustedSender
from core.models import Job
from core.stored_text import render
from mail.models import Message
from tests.analysis.factories import NEWSLETTER, URGENT, synced
from tests.plugins.accounts import verified_client
from tests.plugins.mail import make_raw

pytestmark = pytest.mark.django_db


def analyse(account):
    return analysis_tasks.analyse_account(str(account.pk))  # the task body, in process


def test_sync_queues_every_new_message_for_analysis(dovecot, imap_user, alice):
    account = synced(dovecot, imap_user, alice.user, [make_raw(i) for i in range(5)])
    assert MessageAnalysis.objects.filter(message__account=account, state="pending").count() == 5
    assert analyse(account) == {"done": 5, "failed": 0}
    analysis = MessageAnalysis.objects.filter(message__account=account).first()
    assert analysis.state == "done" and analysis.method.startswith("builtin")
    assert 1 <= analysis.final_urgency <= 3 and 1 <= analysis.final_importance <= 3 and analysis.final_category


def test_newsletters_and_urgent_requests_land_in_different_cells(dovecot, imap_user, alice, alice_client):
    account = synced(dovecot, imap_user, alice.user, [NEWSLETTER % 1, URGENT % 1])
    analyse(account)
    newsletter = MessageAnalysis.objects.get(message__message_id="nl-1@letters.example")
    urgent = MessageAnalysis.objects.get(message__message_id="urgent-1@work.example")
    assert newsletter.final_category == "newsletter" and newsletter.is_newsletter
    assert (urgent.final_urgency, urgent.final_importance) > (newsletter.final_urgency, newsletter.final_importance)
    assert urgent.summary and "contract" in urgent.summary

    page = alice_client.get(reverse("mail:dashboard")).content.decode()
    cell = f'data-testid="cell-{urgent.final_urgency}-{urgent.final_importance}"'
    assert cell in page
    listing = alice_client.get(
        reverse("mail:list") + f"?u={urgent.final_urgency}&i={urgent.final_importance}&open=1"
    ).content.decode()
    assert "URGENT: contract needed today" in listing and "Your weekly digest" not in listing

    alice_client.post(reverse("mail:done", args=[urgent.message_id]))
    urgent.refresh_from_db()
    assert urgent.done_at is not None
    from analysis.queries import matrix_counts

    assert sum(matrix_counts(alice.user).values()) == 1  # only the newsletter is still open


def test_mark_done_keeps_the_first_time_and_undo_puts_it_back(dovecot, imap_user, alice, alice_client):
    account = synced(dovecot, imap_user, alice.user, [URGENT % 2])
    analyse(account)
    row = MessageAnalysis.objects.get(message__account=account)
    assert pipeline.mark_done(row) is True
    first = MessageAnalysis.objects.get(pk=row.pk).done_at
    assert first is not None and row.done_at == first
    assert pipeline.mark_done(row) is False  # a second press changes nothing
    assert MessageAnalysis.objects.get(pk=row.pk).done_at == first
    assert pipeline.mark_done(row, done=False) is True and row.done_at is None
    assert MessageAnalysis.objects.get(pk=row.pk).done_at is None
    assert pipeline.mark_done(row, done=False) is False
    # The page's button and its undo call the same service.
    done = alice_client.post(reverse("mail:done", args=[row.message_id]), HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and MessageAnalysis.objects.get(pk=row.pk).done_at is not None
    alice_client.post(reverse("mail:done", args=[row.message_id]), {"undo": "1"})
    assert MessageAnalysis.objects.get(pk=row.pk).done_at is None


def test_a_trusted_sender_raises_the_score(dovecot, imap_user, alice):
    account = synced(
        dovecot, imap_user, alice.user, [make_raw(1, sender="friend@pals.example", to="team@elsewhere.example")]
    )
    analyse(account)
    row = MessageAnalysis.objects.get(message__account=account)
    before = (row.final_urgency, row.final_importance)
    TrustedSender.objects.create(owner=alice.user, pattern="@pals.example")
    pipeline.analyse_many([row])
    after = MessageAnalysis.objects.get(pk=row.pk)
    assert after.final_urgency + after.final_importance > sum(before)
    assert any("VIP" in r or "trusted" in r.lower() for r in after.reasons)


def test_corrections_are_kept_and_teach_the_classifier(dovecot, imap_user, alice, alice_client):
    raws = [NEWSLETTER % i for i in range(1, 7)]
    account = synced(dovecot, imap_user, alice.user, raws)
    analyse(account)
    first = MessageAnalysis.objects.filter(message__account=account).order_by("message__uid")
    baseline = (first[0].final_urgency, first[0].final_importance)
    for analysis in list(first)[:5]:
        alice_client.post(reverse("mail:correct", args=[analysis.message_id]), {"urgency": "3", "importance": "3"})
    corrected = MessageAnalysis.objects.get(pk=first[0].pk)
    assert (corrected.final_urgency, corrected.final_importance) == (3, 3) and corrected.is_corrected
    learned = LearnedClassifier.objects.get(owner=alice.user)
    assert learned.corrections == 5 and learned.state

    # The sixth, never corrected, scores higher once analysed again with what was learned.
    sixth = MessageAnalysis.objects.get(pk=first[5].pk)
    pipeline.analyse_many([sixth])
    sixth.refresh_from_db()
    assert (sixth.final_urgency, sixth.final_importance) > baseline
    assert "learned" in sixth.method

    # Re-analysis keeps the user's corrections.
    pipeline.analyse_many([corrected])
    corrected.refresh_from_db()
    assert (corrected.final_urgency, corrected.final_importance) == (3, 3)

    alice_client.post(reverse("mail:reset-learning"))
    assert not LearnedClassifier.objects.filter(owner=alice.user).exists()


def test_stragglers_and_failures_are_picked_up(dovecot, imap_user, alice):
    account = synced(dovecot, imap_user, alice.user, [make_raw(i) for i in range(3)])
    rows = list(MessageAnalysis.objects.filter(message__account=account).order_by("message__uid"))
    MessageAnalysis.objects.filter(pk=rows[0].pk).update(queued_at=timezone.now() - timedelta(hours=1))
    MessageAnalysis.objects.filter(pk=rows[1].pk).update(state="failed", attempts=1, failure_reason="Timeout")
    MessageAnalysis.objects.filter(pk=rows[2].pk).update(state="failed", attempts=3, failure_reason="Timeout")
    assert analysis_tasks.analyse_stragglers() == {"done": 2, "failed": 0, "stages_retried": 0, "stages_failed": 0}
    states = dict(MessageAnalysis.objects.filter(message__account=account).values_list("pk", "state"))
    assert states[rows[0].pk] == "done" and states[rows[1].pk] == "done"
    assert states[rows[2].pk] == "failed"  # out of attempts: shown as not analysed, not retried forever
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="mail.analyse_stragglers", enabled=True).exists()


def test_a_locked_strict_mode_user_stays_pending(dovecot, imap_user, db):
    from accounts import keyring
    from tests.plugins.accounts import create_test_user

    carol = create_test_user("carol", strict=True)
    account = synced(dovecot, imap_user, carol.user, [make_raw(1)])
    keyring.drop_session_key(carol.user)
    assert analyse(account) == {"done": 0, "failed": 0}
    assert MessageAnalysis.objects.get(message__account=account).state == "pending"


def test_reprocess_command(dovecot, imap_user, alice):
    account = synced(dovecot, imap_user, alice.user, [make_raw(i) for i in range(4)])
    out = io.StringIO()
    call_command("reprocess", "--user", "alice", "--dry-run", stdout=out)
    assert "4 message(s) would be analysed" in out.getvalue()
    assert MessageAnalysis.objects.filter(state="pending").count() == 4
    out = io.StringIO()
    call_command("reprocess", "--account", str(account.pk), "--since", "2020-01-01", stdout=out)
    assert "Analysed 4 message(s)" in out.getvalue()
    assert MessageAnalysis.objects.filter(state="done").count() == 4
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user"):
        call_command("reprocess", "--user", "nobody")


@pytest.mark.django_db(transaction=True)
def test_reanalyse_job_runs_in_a_worker_with_progress(celery_worker, dovecot, imap_user, alice, alice_client):
    synced(dovecot, imap_user, alice.user, [make_raw(i) for i in range(6)])
    response = alice_client.post(reverse("mail:reanalyse"), {"account": "", "since": ""})
    job = Job.objects.get(owner=alice.user, kind="reanalyse")
    assert response.url == reverse("jobs:detail", args=[job.pk])
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            break
        time.sleep(0.2)
    assert job.status == "success" and job.total == 6 and job.done == 6 and render(job.result) == "Analysed: 6"
    page = alice_client.get(reverse("jobs:progress", args=[job.pk])).content.decode()
    assert 'data-status="success"' in page and "hx-trigger" not in page


def test_another_users_analysis_urls_are_not_found(dovecot, imap_user, alice, bob):
    account = synced(dovecot, imap_user, alice.user, [make_raw(1)])
    analyse(account)
    message = Message.objects.get(account=account)
    trusted = TrustedSender.objects.create(owner=alice.user, pattern="x@y.example")
    bob_client = verified_client(bob)
    assert bob_client.post(reverse("mail:correct", args=[message.pk]), {"urgency": "3"}).status_code == 404
    assert bob_client.post(reverse("mail:done", args=[message.pk])).status_code == 404
    assert bob_client.post(reverse("mail:trusted-sender-delete", args=[trusted.pk])).status_code == 404
    assert bob_client.get(reverse("mail:dashboard") + f"?account={account.pk}").status_code == 404
    assert MessageAnalysis.objects.get(message=message).corrected_urgency is None
