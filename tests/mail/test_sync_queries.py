"""What a no-change sync costs the database (bench/fanout.py multiplies it by 10,000 accounts), and the
shortcuts that keep it low: the follow-ups in one query, a finished run that knows it is quiet."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mail import sync, sync_follow_ups, tasks
from mail.models import Message, PendingAction, SyncRun
from mail.sync_follow_ups import FollowUps
from tests.plugins.mail import make_raw, run_sync

pytestmark = pytest.mark.django_db


def test_a_scheduled_sync_that_finds_nothing_new_takes_few_queries(dovecot, imap_user, mail_account):
    for n in range(3):
        dovecot.deliver(imap_user, make_raw(n))
    assert run_sync(mail_account).messages_new == 3
    run_sync(mail_account)  # a quiet run exists, so the next one has one to replace

    with CaptureQueriesContext(connection) as queries:
        result = tasks.sync_account(account_id=str(mail_account.pk))  # as beat's dispatcher sends it
    assert result["status"] == "success" and result["new"] == 0
    statements = "\n".join(q["sql"][:160] for q in queries.captured_queries)
    assert len(queries) == 15, statements  # 25 before #15
    assert SyncRun.objects.filter(account=mail_account).count() == 2  # the first run and the newest quiet one


def test_a_sync_task_for_an_account_deleted_after_it_was_queued_reports_it_gone(mail_account):
    account_id = str(mail_account.pk)
    mail_account.delete()
    assert tasks.sync_account(account_id=account_id) == {"status": "gone"}
    assert not SyncRun.objects.filter(account_id=account_id).exists()


def test_follow_ups_say_what_waits_after_a_sync_in_one_query(alice, mail_account, dovecot, imap_user):
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(mail_account)
    with CaptureQueriesContext(connection) as queries:
        assert sync_follow_ups.after_sync(mail_account.pk, timedelta(minutes=2)) == FollowUps(False, False)
    assert len(queries) == 1

    action = PendingAction.objects.create(
        owner=alice.user, account=mail_account, message=Message.objects.get(), kind="mark_read", source_folder="INBOX"
    )
    assert not sync_follow_ups.after_sync(mail_account.pk, timedelta(minutes=2)).write_back  # its task is queued
    PendingAction.objects.filter(pk=action.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    assert sync_follow_ups.after_sync(mail_account.pk, timedelta(minutes=2)) == FollowUps(False, True)
    PendingAction.objects.filter(pk=action.pk).update(done_at=timezone.now())
    mail_account.folders.filter(name="INBOX").update(backfill_below_uid=1, backfill_uidvalidity=1)
    assert sync_follow_ups.after_sync(mail_account.pk, timedelta(minutes=2)) == FollowUps(True, False)
    assert sync_follow_ups.after_sync(uuid.uuid4(), timedelta(minutes=2)) == FollowUps(False, False)


@pytest.mark.parametrize("trigger", [t.value for t in SyncRun.Trigger])
@pytest.mark.parametrize("status", [s.value for s in SyncRun.Status])
@pytest.mark.parametrize(
    "change", [{}, {"messages_new": 1}, {"messages_updated": 2}, {"messages_expunged": 1}, {"errors": ["x"]}]
)
def test_a_run_in_memory_is_quiet_exactly_when_the_query_says_so(mail_account, trigger, status, change):
    run = SyncRun.objects.create(account=mail_account, trigger=trigger, status=status, **change)
    assert sync.is_quiet(run) == SyncRun.objects.filter(sync.QUIET, pk=run.pk).exists()
