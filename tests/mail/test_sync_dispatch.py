"""Account syncs sent from one query (mail.sync_dispatch) by the installation's beat (mail.beat)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from mail import sync_dispatch
from mail.models import MailAccount
from tests.plugins.celery_worker import ROOT, _die_with_parent, private_redis, service_env
from tests.plugins.mailservers import free_port


def _account(owner, name: str, minutes_since_last_run: float | None, enabled: bool = True) -> MailAccount:
    """An account (its beat row made by mail.schedule_receivers) last synced that long ago."""
    account = MailAccount.objects.create(
        owner=owner, name=name, email_address=f"{name}@example.test", imap_host="127.0.0.1", imap_username=name,
        sync_interval_minutes=5, enabled=enabled,
    )  # fmt: skip
    last = None if minutes_since_last_run is None else timezone.now() - timedelta(minutes=minutes_since_last_run)
    PeriodicTask.objects.filter(pk=account.periodic_task_id).update(last_run_at=last)
    return account


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, kwargs: dict, name: str) -> None:
        self.sent.append((kwargs["account_id"], name))


def test_due_syncs_are_sent_once_and_recorded_on_their_rows(alice):
    due = _account(alice.user, "due", 6)
    recent = _account(alice.user, "recent", 1)
    paused = _account(alice.user, "paused", 60, enabled=False)
    never_run = _account(alice.user, "never", None)  # counts from its last change: just now
    old_never_run = _account(alice.user, "old-never", None)
    PeriodicTask.objects.filter(pk=old_never_run.periodic_task_id).update(
        date_changed=timezone.now() - timedelta(minutes=10)
    )
    record = Recorder()
    before = PeriodicTask.objects.get(pk=due.periodic_task_id)

    assert sync_dispatch.send_due(record) == 2
    assert sorted(record.sent) == sorted(
        [(str(due.pk), f"mail sync {due.pk}"), (str(old_never_run.pk), f"mail sync {old_never_run.pk}")]
    )
    row = PeriodicTask.objects.get(pk=due.periodic_task_id)
    assert row.total_run_count == before.total_run_count + 1
    assert timezone.now() - row.last_run_at < timedelta(seconds=5)

    assert sync_dispatch.send_due(record) == 0, "a sent row is not due again before its interval"
    sent_ids = {account_id for account_id, _ in record.sent}
    assert not sent_ids & {str(recent.pk), str(paused.pk), str(never_run.pk)}
    first = sync_dispatch.next_due_at()  # the row synced a minute ago, four minutes from now
    assert first is not None and timezone.now() + timedelta(minutes=3) < first < timezone.now() + timedelta(minutes=4)
    later = timezone.now() + timedelta(minutes=5, seconds=1)
    assert sync_dispatch.send_due(record, now=later) == 4, "one interval on, every enabled row is due"


def test_rows_outside_the_dispatcher_stay_with_beats_own_scheduler(alice):
    """A row an operator gave a crontab is beat's to send; so are all the other tasks' rows."""
    from mail.beat import AccountSyncScheduler
    from mailhelper.celery import app

    plain = _account(alice.user, "plain", 60)
    cron = _account(alice.user, "cron", 60)
    PeriodicTask.objects.filter(pk=cron.periodic_task_id).update(
        interval=None, crontab=CrontabSchedule.objects.create(minute="*/10")
    )
    record = Recorder()
    assert sync_dispatch.send_due(record) == 1 and record.sent[0][0] == str(plain.pk)

    scheduler = AccountSyncScheduler(app=app, lazy=True)
    names = {row.name for row in scheduler.enabled_models_qs()}
    assert f"mail sync {cron.pk}" in names and f"mail sync {plain.pk}" not in names
    assert {"mail: settle stale sync runs", "mail: analyse stragglers"} <= names


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_send_each_due_sync_once(alice):
    """SKIP LOCKED: rows locked by one dispatcher are passed over by the other, not sent twice."""
    accounts = [_account(alice.user, f"a{i}", 6) for i in range(6)]
    held = [a.periodic_task_id for a in accounts[:3]]
    locked, release = threading.Event(), threading.Event()

    def other_dispatcher() -> None:
        try:
            with transaction.atomic():
                list(PeriodicTask.objects.select_for_update().filter(pk__in=held))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_dispatcher)
    thread.start()
    assert locked.wait(10)
    record = Recorder()
    try:
        assert sync_dispatch.send_due(record) == 3, "the locked rows are skipped, not waited for"
    finally:
        release.set()
        thread.join(10)
    assert {a for a, _ in record.sent} == {str(a.pk) for a in accounts[3:]}
    assert sync_dispatch.send_due(record) == 3
    assert sorted(a for a, _ in record.sent) == sorted(str(a.pk) for a in accounts)


@pytest.mark.django_db(transaction=True)
def test_beat_sends_due_account_syncs_to_the_sync_queue(alice, tmp_path):
    """A real `celery beat` with the installation's scheduler puts a due account's sync on the sync
    queue, named after its row, and the sync of an account changed to be due while it runs."""
    import redis

    due = _account(alice.user, "due", 6)
    not_due = _account(alice.user, "later", 1)
    port = free_port()
    env = {
        **service_env(),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "REDIS_URL": f"redis://127.0.0.1:{port}/1",
    }
    log = tmp_path / "beat.log"
    with private_redis(port), log.open("wb") as out:
        beat = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "celery", "-A", "mailhelper", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp_path / "unused")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no orphan beat if the test run dies
        )  # fmt: skip
        try:
            queue = redis.Redis(port=port)
            first = _next_sync(queue, beat, log)
            assert first == (str(due.pk), f"mail sync {due.pk}")
            PeriodicTask.objects.filter(pk=not_due.periodic_task_id).update(
                last_run_at=timezone.now() - timedelta(minutes=6)
            )
            assert _next_sync(queue, beat, log) == (str(not_due.pk), f"mail sync {not_due.pk}")
        finally:
            beat.terminate()
            beat.wait(20)
    assert PeriodicTask.objects.get(pk=due.periodic_task_id).total_run_count == 1
    assert "AccountSyncScheduler" in log.read_text()


def _next_sync(queue, beat: subprocess.Popen, log, timeout: float = 30) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert beat.poll() is None, f"beat exited:\n{log.read_text()[-2000:]}"
        item = queue.brpop(["sync"], timeout=1)
        if item is None:
            continue
        message = json.loads(item[1])
        headers = message["headers"]
        if headers["task"] == "mail.sync_account":
            kwargs = json.loads(base64.b64decode(message["body"]))[1]
            return kwargs["account_id"], headers["periodic_task_name"]
    raise AssertionError(f"no sync reached the queue in {timeout}s:\n{log.read_text()[-2000:]}")
