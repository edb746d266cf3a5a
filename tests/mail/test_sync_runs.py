"""A sync run's record after a crash: stale runs settled, finished runs never rewritten."""

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from core.jobs import stale_after
from mail import sync, tasks
from mail.models import SyncRun
from tests.plugins.mail import make_raw, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_worker(mail_account):
    """Another database session holding the account's lock, as a live sync on another worker does."""
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [sync._lock_key(mail_account)])
    yield other
    other.close()


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def test_a_scheduled_sync_settles_the_run_a_dead_worker_left_running(dovecot, imap_user, mail_account):
    dovecot.deliver(imap_user, make_raw(1))
    dead = SyncRun.objects.create(account=mail_account, trigger=SyncRun.Trigger.MANUAL, status=SyncRun.Status.RUNNING)
    run = run_sync(mail_account)  # trigger "schedule", as beat sends it; nobody holds the lock
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.INTERRUPTED and dead.finished_at is not None
    assert dead.current_folder == "" and "worker stopped" in dead.error
    assert run.pk != dead.pk and run.status == SyncRun.Status.SUCCESS and run.messages_new == 1


def test_a_run_whose_sync_holds_the_lock_is_left_running(mail_account, other_worker):
    live = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    assert sync.settle_stale_runs() == 0
    live.refresh_from_db()
    assert live.status == SyncRun.Status.RUNNING


def test_a_run_silent_longer_than_a_task_may_live_is_settled_even_if_its_lock_looks_held(mail_account, other_worker):
    # The worker's host vanished; PostgreSQL has not noticed its connection is dead.
    silent = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    recent = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    SyncRun.objects.filter(pk=silent.pk).update(heartbeat_at=timezone.now() - stale_after() - timedelta(seconds=5))
    SyncRun.objects.filter(pk=recent.pk).update(heartbeat_at=timezone.now() - stale_after() + timedelta(minutes=1))
    assert sync.settle_stale_runs(mail_account) == 1
    assert SyncRun.objects.get(pk=silent.pk).status == SyncRun.Status.INTERRUPTED
    assert SyncRun.objects.get(pk=recent.pk).status == SyncRun.Status.RUNNING


def test_a_queued_run_without_sign_of_life_is_settled_by_the_sweep_task(mail_account):
    lost = SyncRun.objects.create(account=mail_account, trigger=SyncRun.Trigger.MANUAL)
    waiting = SyncRun.objects.create(account=mail_account, trigger=SyncRun.Trigger.MANUAL)
    SyncRun.objects.filter(pk=lost.pk).update(heartbeat_at=ago(minutes=16))
    SyncRun.objects.filter(pk=waiting.pk).update(heartbeat_at=ago(minutes=14))
    assert tasks.settle_stale_sync_runs() == {"settled": 1}
    lost.refresh_from_db()
    assert lost.status == SyncRun.Status.INTERRUPTED and "no worker started" in lost.error
    assert SyncRun.objects.get(pk=waiting.pk).status == SyncRun.Status.QUEUED


def test_the_sweep_has_a_beat_row():
    from django_celery_beat.models import PeriodicTask

    from mailhelper.celery import app

    row = PeriodicTask.objects.get(task="mail.settle_stale_sync_runs")
    assert row.enabled and row.interval.every == 5 and row.interval.period == "minutes"
    assert "mail.settle_stale_sync_runs" in app.tasks


@pytest.mark.parametrize("status", [SyncRun.Status.INTERRUPTED, SyncRun.Status.FAILED, SyncRun.Status.SUCCESS])
def test_a_task_given_a_finished_run_records_its_work_as_a_new_run(dovecot, imap_user, mail_account, status):
    dovecot.deliver(imap_user, make_raw(1))
    old = SyncRun.objects.create(
        account=mail_account, trigger=SyncRun.Trigger.MANUAL, status=status, finished_at=ago(minutes=3), error="x"
    )
    before = SyncRun.objects.filter(pk=old.pk).values().get()
    run = sync.sync_account(mail_account.pk, run_id=old.pk, trigger=SyncRun.Trigger.MANUAL).run
    assert SyncRun.objects.filter(pk=old.pk).values().get() == before  # not a field changed
    assert run.pk != old.pk and run.trigger == SyncRun.Trigger.MANUAL
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 1


def test_a_duplicate_task_never_touches_the_run_another_sync_is_running(mail_account, other_worker):
    live = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    run = sync.sync_account(mail_account.pk, run_id=live.pk).run
    assert run.pk != live.pk and run.status == SyncRun.Status.SKIPPED
    assert SyncRun.objects.get(pk=live.pk).status == SyncRun.Status.RUNNING


def test_progress_saves_are_the_heartbeat_and_stop_once_the_run_is_settled(dovecot, imap_user, mail_account):
    run = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=ago(minutes=5))
    run.messages_new = 3
    sync.record_progress(run, "messages_new")
    stored = SyncRun.objects.get(pk=run.pk)
    assert stored.messages_new == 3 and stored.heartbeat_at > ago(seconds=5)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.INTERRUPTED)
    run.messages_new = 9
    sync.record_progress(run, "messages_new")
    assert SyncRun.objects.get(pk=run.pk).messages_new == 3


def test_quiet_scheduled_runs_leave_one_row_and_the_account_page_still_says_when_it_was_checked(
    alice_client, dovecot, imap_user, mail_account
):
    from django.urls import reverse

    dovecot.deliver(imap_user, make_raw(1))
    with_mail = run_sync(mail_account)
    asked = sync.sync_account(mail_account.pk, trigger=SyncRun.Trigger.MANUAL).run  # quiet, but asked for
    failed = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.FAILED, finished_at=ago(seconds=1))
    quiet = [run_sync(mail_account) for _ in range(3)]
    assert all(r.status == SyncRun.Status.SUCCESS and r.messages_new == 0 for r in quiet)
    kept = set(SyncRun.objects.filter(account=mail_account).values_list("pk", flat=True))
    assert kept == {with_mail.pk, asked.pk, failed.pk, quiet[-1].pk}

    dovecot.deliver(imap_user, make_raw(2))
    assert run_sync(mail_account).messages_new == 1
    last = run_sync(mail_account)  # quiet again: replaces quiet[-1], the run with mail stays
    assert not SyncRun.objects.filter(pk=quiet[-1].pk).exists()
    assert SyncRun.objects.filter(account=mail_account).count() == 5

    mail_account.refresh_from_db()
    assert mail_account.last_sync_at >= last.finished_at - timedelta(seconds=1)
    page = alice_client.get(reverse("mail:accounts")).content.decode()
    assert "Last checked" in page and f'datetime="{mail_account.last_sync_at.isoformat()}"' in page
    assert reverse("mail:sync-run", args=[last.pk]) in page  # "last run" links the latest, quiet or not
