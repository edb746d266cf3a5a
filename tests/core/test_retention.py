"""Retention (core/retention.py and the apps' policies): old history goes in batches, what matters stays."""

from __future__ import annotations

import itertools
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from core import retention, tasks
from core.models import Job
from mail.models import Folder, MailAccount, Message, PendingAction, SyncRun

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
_uids = itertools.count(1)


@pytest.fixture
def history(alice):
    """Rows of every policy, each named by what prune must do with it: `gone` or `kept`."""
    now = timezone.now()
    owner = alice.user

    def account(name: str) -> MailAccount:
        return MailAccount.objects.create(
            owner=owner, name=name, email_address=f"{name}@example.test", imap_host="127.0.0.1", imap_username=name
        )

    def run(acc: MailAccount, age: timedelta, status: str = SyncRun.Status.SUCCESS) -> SyncRun:
        made = SyncRun.objects.create(account=acc, status=status)
        SyncRun.objects.filter(pk=made.pk).update(queued_at=now - age, finished_at=now - age)
        return made

    busy, quiet, failing = account("busy"), account("quiet"), account("failing")
    gone, kept = {}, {}
    # busy: a run yesterday, so all its old runs go.
    kept["busy latest"] = run(busy, DAY)
    for n in range(3):
        gone[f"busy old {n}"] = run(busy, (20 + n) * DAY)
    gone["busy old skipped"] = run(busy, 15 * DAY, SyncRun.Status.SKIPPED)
    kept["busy recent"] = run(busy, 13 * DAY)
    # quiet: not synced for weeks; its newest run stays however old it is.
    gone["quiet older"] = run(quiet, 60 * DAY)
    kept["quiet newest"] = run(quiet, 50 * DAY)
    # failing: failures of the last 30 days stay past the sync-run age, older ones go.
    kept["failing latest"] = run(failing, DAY, SyncRun.Status.FAILED)
    kept["failed 20 days ago"] = run(failing, 20 * DAY, SyncRun.Status.FAILED)
    kept["interrupted 25 days ago"] = run(failing, 25 * DAY, SyncRun.Status.INTERRUPTED)
    gone["failed 40 days ago"] = run(failing, 40 * DAY, SyncRun.Status.FAILED)
    kept["running, old"] = run(failing, 20 * DAY, SyncRun.Status.RUNNING)  # the stale sweep settles it first

    folder = Folder.objects.create(account=busy, name="INBOX", special_use="inbox", sync_enabled=True)

    def action(done_age: timedelta | None, created_age: timedelta) -> PendingAction:
        message = Message.objects.create(
            owner=owner, account=busy, folder=folder, uidvalidity=1, uid=next(_uids), sort_date=now
        )
        made = PendingAction.objects.create(
            owner=owner, account=busy, message=message, kind=PendingAction.Kind.MARK_READ, source_folder="INBOX"
        )
        done_at = None if done_age is None else now - done_age
        PendingAction.objects.filter(pk=made.pk).update(created_at=now - created_age, done_at=done_at)
        return made

    gone["action done 40 days ago"] = action(40 * DAY, 41 * DAY)
    kept["action done 10 days ago"] = action(10 * DAY, 41 * DAY)
    kept["action pending for 60 days"] = action(None, 60 * DAY)

    def job(status: str, finished_age: timedelta | None) -> Job:
        made = Job.objects.create(owner=owner, kind=Job.Kind.REANALYSE, status=status)
        finished_at = None if finished_age is None else now - finished_age
        Job.objects.filter(pk=made.pk).update(created_at=now - 50 * DAY, finished_at=finished_at)
        return made

    gone["job succeeded 40 days ago"] = job(Job.Status.SUCCESS, 40 * DAY)
    gone["job failed 40 days ago"] = job(Job.Status.FAILED, 40 * DAY)
    kept["job finished 10 days ago"] = job(Job.Status.SUCCESS, 10 * DAY)
    kept["job queued 50 days ago"] = job(Job.Status.QUEUED, None)

    def result(task_id: str, status: str, age: timedelta) -> TaskResult:
        made = TaskResult.objects.create(task_id=task_id, task_name="mail.sync_account", status=status)
        TaskResult.objects.filter(pk=made.pk).update(date_done=now - age)
        return made

    gone["result 10 days ago"] = result("old", "SUCCESS", 10 * DAY)
    gone["failure 8 days ago"] = result("old-failure", "FAILURE", 8 * DAY)
    kept["result 2 days ago"] = result("new", "SUCCESS", 2 * DAY)
    kept["started 10 days ago"] = result("running", "STARTED", 10 * DAY)
    return gone, kept


def exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


EXPECTED = {"jobs": 2, "task results": 2, "sync runs": 6, "outbox": 1}


def test_the_apps_register_their_policies_with_their_settings():
    assert [(p.name, p.days_setting) for p in retention.policies()] == [
        ("jobs", "MAILHELPER_RETENTION_JOBS_DAYS"),
        ("task results", "MAILHELPER_RETENTION_TASK_RESULTS_DAYS"),
        ("sync runs", "MAILHELPER_RETENTION_SYNC_RUNS_DAYS"),
        ("outbox", "MAILHELPER_RETENTION_OUTBOX_DAYS"),
    ]
    assert [p.days for p in retention.policies()] == [30, 7, 14, 30]


def test_old_rows_go_and_what_still_matters_stays(history):
    gone, kept = history
    assert retention.prune() == EXPECTED
    assert [name for name, row in gone.items() if exists(row)] == []
    assert [name for name, row in kept.items() if not exists(row)] == []
    assert retention.prune() == dict.fromkeys(EXPECTED, 0)  # nothing left to do


def test_a_dry_run_counts_and_deletes_nothing(history):
    gone, kept = history
    assert retention.prune(dry_run=True) == EXPECTED
    assert all(exists(row) for row in [*gone.values(), *kept.values()])


def test_deletes_go_in_batches_of_their_own(history):
    gone, kept = history
    batches = []
    counts = retention.prune(batch_size=2, on_batch=lambda name, rows, seconds: batches.append((name, rows)))
    assert counts == EXPECTED
    assert [rows for name, rows in batches if name == "sync runs"] == [2, 2, 2]
    assert all(0 < rows <= 2 for _, rows in batches)
    assert not any(exists(row) for row in gone.values()) and all(exists(row) for row in kept.values())


def test_an_age_of_zero_keeps_everything(history, settings):
    settings.MAILHELPER_RETENTION_SYNC_RUNS_DAYS = 0
    settings.MAILHELPER_RETENTION_JOBS_DAYS = 0
    counts = retention.prune()
    assert counts == {**EXPECTED, "sync runs": 0, "jobs": 0}
    gone, _ = history
    assert exists(gone["quiet older"]) and exists(gone["job failed 40 days ago"])


def test_the_ages_follow_the_settings(history, settings):
    settings.MAILHELPER_RETENTION_TASK_RESULTS_DAYS = 9  # only the 10-day-old result is past it
    settings.MAILHELPER_RETENTION_OUTBOX_DAYS = 5
    counts = retention.prune(dry_run=True)
    assert (counts["task results"], counts["outbox"]) == (1, 2)


def test_the_prune_command_prints_each_policy(history):
    out = StringIO()
    call_command("prune", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "sync runs: would delete 6 (older than 14 days)" in text and "Would delete 11 row(s) in all." in text
    gone, _ = history
    assert all(exists(row) for row in gone.values())

    out = StringIO()
    call_command("prune", stdout=out)
    assert "outbox: deleted 1 (older than 30 days)" in out.getvalue() and "Deleted 11 row(s)" in out.getvalue()
    assert not any(exists(row) for row in gone.values())


def test_migrate_leaves_a_daily_beat_row_for_the_task():
    row = PeriodicTask.objects.get(name="core: prune old rows")
    assert row.task == "core.prune" and row.enabled
    assert (row.interval.every, row.interval.period) == (1, "days")
    assert not PeriodicTask.objects.filter(task="celery.backend_cleanup").exists()
    assert "core.prune" in tasks.prune.app.tasks


@pytest.mark.django_db(transaction=True)  # the worker sees committed rows only
def test_a_real_worker_runs_the_beat_task(celery_worker, history):
    gone, kept = history
    result = tasks.prune.delay()
    assert result.get(timeout=60) == EXPECTED
    assert not any(exists(row) for row in gone.values())
    assert all(exists(row) for row in kept.values())
