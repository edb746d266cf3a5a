"""Sync through real Celery processes: the task, a worker killed mid-sync, and beat running the row."""

import ast
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from mail import sync, tasks
from mail.models import Message, SyncRun
from tests.plugins.celery_worker import ROOT, service_env, start_worker, stop_worker
from tests.plugins.mail import create_account, make_raw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_sync_task_runs_in_a_real_worker_and_carries_only_ids(celery_worker, alice, imap_user, dovecot):
    account = create_account(alice.user, imap_user, dovecot)
    for i in range(20):
        dovecot.deliver(imap_user, make_raw(i))
    result = tasks.sync_account.delay(account_id=str(account.pk))
    outcome = result.get(timeout=60)
    assert outcome["status"] == "success" and outcome["new"] == 20
    assert Message.objects.filter(account=account).count() == 20
    from django_celery_results.models import TaskResult

    stored = TaskResult.objects.get(task_id=result.id)
    assert imap_user.password not in (stored.task_kwargs or "") + (stored.result or "")
    assert "Message number" not in (stored.result or "")
    # Its result is stored when it ends; while it runs, its SyncRun (not a STARTED row) says so.
    assert stored.status == "SUCCESS" and tasks.sync_account.track_started is False


def test_a_worker_killed_mid_sync_is_settled_by_the_next_scheduled_sync_and_its_redelivery_changes_no_run(
    celery_worker, alice, imap_user, dovecot, tmp_path
):
    # celery_worker: the session worker runs the scheduled sync (default queue) and the analysis it
    # chains, and is waited for before the database is flushed. Its visibility timeout is the
    # default hour, so only the second worker below brings the orphaned task back.
    total = 600
    for i in range(total):
        dovecot.deliver(imap_user, make_raw(i, body_kb=20))
    account = create_account(alice.user, imap_user, dovecot)
    run = SyncRun.objects.create(account=account, trigger=SyncRun.Trigger.MANUAL)
    env = {
        "MAILHELPER_SYNC_BATCH": "10",
        "CELERY_VISIBILITY_TIMEOUT": "3",  # redeliver 3 s after the kill, sweeping every second
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        # The killed worker may die holding the sweep's mutex (it sweeps every second here).
        "CELERY_UNACKED_MUTEX_EXPIRE": "2",
    }
    queue = f"killtest-{os.getpid()}"
    worker = start_worker(
        tmp_path / "w1.log", concurrency=1, extra_args=("-Q", queue), env_overrides=env, hostname=f"{queue}-1@test"
    )
    try:
        kwargs = {"account_id": str(account.pk), "run_id": run.pk, "trigger": run.trigger}  # as "sync now" sends it
        tasks.sync_account.apply_async(kwargs=kwargs, queue=queue)
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).messages_new >= 30, 60, 0.02, "the sync to be under way")
        os.killpg(worker.process.pid, signal.SIGKILL)  # the whole worker: main process and pool child
        worker.process.wait(10)
    finally:
        stop_worker(worker)
    stored_at_kill = Message.objects.filter(account=account).count()
    assert 0 < stored_at_kill < total, "the kill must land mid-sync"
    assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.RUNNING
    # PostgreSQL drops the dead worker's session, and the account's lock with it.
    wait_for(lambda: not sync.is_sync_running(account), 10, 0.1, "the dead worker's lock to go")

    # A scheduled sync (what beat sends), not "sync now": it settles the old run and completes the mailbox.
    outcome = tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=120)
    interrupted = SyncRun.objects.get(pk=run.pk)
    assert interrupted.status == SyncRun.Status.INTERRUPTED and interrupted.finished_at is not None
    scheduled = SyncRun.objects.get(pk=outcome["run"])
    assert scheduled.trigger == SyncRun.Trigger.SCHEDULE and scheduled.status == SyncRun.Status.SUCCESS
    assert scheduled.messages_new == total - stored_at_kill
    finished = {r["id"]: r for r in SyncRun.objects.values()}

    # The orphaned task comes back (visibility timeout of 3 s on this worker) and finds its run finished.
    second = start_worker(
        tmp_path / "w2.log", concurrency=1, extra_args=("-Q", queue), env_overrides=env, hostname=f"{queue}-2@test"
    )
    try:
        redelivered = wait_for(
            lambda: SyncRun.objects.exclude(pk__in=finished).filter(status=SyncRun.Status.SUCCESS).first(),
            60,
            0.2,
            f"the redelivered task to record its run (worker log: {second.log_path})",
        )
    finally:
        stop_worker(second)
    assert {r["id"]: r for r in SyncRun.objects.filter(pk__in=finished).values()} == finished  # none changed
    assert redelivered.trigger == SyncRun.Trigger.MANUAL and redelivered.messages_new == 0
    uids = sorted(Message.objects.filter(account=account).values_list("uid", flat=True))
    assert uids == list(range(1, total + 1))  # nothing lost, nothing twice


def test_the_beat_row_runs_the_sync_task(celery_worker, alice, imap_user, dovecot, tmp_path):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(1))
    task = PeriodicTask.objects.get(pk=account.periodic_task_id)
    assert json.loads(task.kwargs) == {"account_id": str(account.pk)}
    # Due now: as if the last run was long ago.
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=timezone.now() - timedelta(hours=1))
    log = (tmp_path / "beat.log").open("wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mailhelper", "beat", "--loglevel", "INFO",
         "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", "", "-s", str(tmp_path / "beat.db")],
        cwd=ROOT, env=service_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        run = wait_for(
            lambda: SyncRun.objects.filter(account=account, status=SyncRun.Status.SUCCESS).first(),
            60,
            0.3,
            "beat to send the account's sync",
        )
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(10)
    assert run.trigger == SyncRun.Trigger.SCHEDULE and run.messages_new == 1


def test_a_sync_that_reaches_the_server_replays_changes_still_waiting(celery_worker, alice, imap_user, dovecot):
    from mail import actions
    from mail.models import PendingAction
    from tests.plugins import imap_helpers as srv

    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(1))
    assert tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)["status"] == "success"
    message = Message.objects.get(account=account)
    # Flagged here while its write-back task was lost (or gave up while the server was down): the
    # mark says one is queued, so the change's announcement queues none; then the mark expires.
    from django.core.cache import cache

    cache.set(tasks.WRITE_BACK_QUEUED.format(account.pk), 1, timeout=60)
    assert actions.apply([message], "flag") == 1
    cache.delete(tasks.WRITE_BACK_QUEUED.format(account.pk))
    assert "\\Flagged" not in srv.server_flags(dovecot, imap_user)[message.uid]
    assert tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)["status"] == "success"
    assert actions.has_pending(account.pk)  # a fresh change is left to the write-back its request queues
    PendingAction.objects.filter(message=message).update(created_at=timezone.now() - timedelta(minutes=3))

    assert tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)["status"] == "success"
    wait_for(lambda: not actions.has_pending(account.pk), timeout=30, what="the outbox to be written back")
    assert "\\Flagged" in srv.server_flags(dovecot, imap_user)[message.uid]
    assert PendingAction.objects.get(message=message).error == ""


def test_write_backs_queued_in_a_row_share_one_task(celery_worker, alice, imap_user, dovecot):
    from django.core.cache import cache

    from mail import actions
    from tests.plugins import imap_helpers as srv

    account = create_account(alice.user, imap_user, dovecot)
    for i in range(3):
        dovecot.deliver(imap_user, make_raw(i))
    assert tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)["status"] == "success"
    first, second, third = Message.objects.filter(account=account).order_by("uid")
    queued_mark = tasks.WRITE_BACK_QUEUED.format(account.pk)

    # A write-back is queued and has not started: later changes ride along instead of queueing more.
    cache.set(queued_mark, 1, timeout=60)
    actions.apply([first], "flag")  # each change announces itself (signals.outbox_changed) ...
    actions.apply([second], "flag")
    assert tasks.queue_write_back(str(account.pk)) is False  # ... and found the mark, like this call
    assert actions.has_pending(account.pk)

    cache.delete(queued_mark)  # as if that task were lost: the next change queues one, which does all
    actions.apply([third], "flag")
    wait_for(lambda: not actions.has_pending(account.pk), timeout=30, what="the outbox to be written back")
    flags = srv.server_flags(dovecot, imap_user)
    assert all("\\Flagged" in flags[m.uid] for m in (first, second, third))
    assert cache.get(queued_mark) is None  # the task cleared it when it started
    assert tasks.queue_write_back(str(account.pk)) is True  # so the next change gets a task again
    wait_for(lambda: cache.get(queued_mark) is None, timeout=30, what="that task to start")


@contextmanager
def worker_paused():
    """The session worker stops taking tasks (it keeps running), so a test can look at what was
    queued; yields a function listing the account ids of the queued write-backs. Resumes after."""
    from mailhelper.celery import app

    queue = app.amqp.router.route({}, "mail.write_back")["queue"].name
    assert app.control.cancel_consumer(queue, reply=True, timeout=5), "the worker did not answer"

    def queued_write_backs() -> list[str]:
        with app.connection_for_read() as connection:
            raw = connection.default_channel.client.lrange(queue, 0, -1)
        headers = [json.loads(item)["headers"] for item in raw]
        return [ast.literal_eval(h["kwargsrepr"])["account_id"] for h in headers if h["task"] == "mail.write_back"]

    try:
        yield queued_write_backs
    finally:
        app.control.add_consumer(queue, reply=True, timeout=5)


def test_a_rule_and_a_page_get_their_changes_written_back_without_queueing_it(celery_worker, alice, imap_user, dovecot):
    """Neither the rules service nor the page queues the write-back: mail.actions announces the
    changed outbox on commit, mail.tasks queues it, once per account, however many changes."""
    from django.urls import reverse

    from mail import actions
    from rules import service
    from rules.models import Rule
    from tests.plugins import imap_helpers as srv
    from tests.plugins.accounts import verified_client
    from tests.plugins.mail import run_sync

    account = create_account(alice.user, imap_user, dovecot)
    for i in range(4):
        dovecot.deliver(imap_user, make_raw(i))
    run_sync(account)  # in this process: no analysis runs, so no rule runs on its own
    first, second, third, fourth = Message.objects.filter(account=account).order_by("uid")
    rule = Rule.objects.create(
        owner=alice.user, name="flag and read", order=1, enabled=False,
        definition={"match": "all", "conditions": [{"field": "subject", "op": "contains", "value": "number 0"}],
                    "actions": [{"type": "flag"}, {"type": "mark_read"}]},
    )  # fmt: skip

    with worker_paused() as queued_write_backs:
        assert service.run_on_messages(alice.user.pk, [first, second], only=[rule]) == 1  # no view, no task
        assert queued_write_backs() == [str(account.pk)]  # two changes, one write-back
    wait_for(lambda: not actions.has_pending(account.pk), timeout=30, what="the rule's changes to be written back")
    assert {"\\Flagged", "\\Seen"} <= set(srv.server_flags(dovecot, imap_user)[first.uid])

    client = verified_client(alice)
    with worker_paused() as queued_write_backs:
        ids = [str(m.pk) for m in (second, third)]
        assert client.post(reverse("mail:bulk-action"), {"action": "flag", "ids": ids}).status_code == 302
        client.post(reverse("mail:message-action", args=[fourth.pk]), {"action": "flag"})
        assert queued_write_backs() == [str(account.pk)]  # three changes in two requests, one write-back
    wait_for(lambda: not actions.has_pending(account.pk), timeout=30, what="the page's changes to be written back")
    flags = srv.server_flags(dovecot, imap_user)
    assert all("\\Flagged" in flags[m.uid] for m in (second, third, fourth))


def test_a_write_back_task_that_finds_another_running_queues_itself_again(celery_worker, alice, imap_user, dovecot):
    from django.db import connections
    from django_celery_results.models import TaskResult

    from mail import actions
    from tests.plugins import imap_helpers as srv

    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(1))
    assert tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)["status"] == "success"
    message = Message.objects.get(account=account)

    running = connections.create_connection("default")  # a write-back running elsewhere, holding the lock
    try:
        with running.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [actions.write_back_lock_key(account.pk)])
        actions.apply([message], "flag")  # queues the worker's write-back, which finds the lock taken
        wait_for(
            lambda: TaskResult.objects.filter(task_name="mail.write_back", result__contains="busy").exists(),
            timeout=30,
            what="the write-back to find another running",
        )
        assert actions.has_pending(account.pk)
        assert "\\Flagged" not in srv.server_flags(dovecot, imap_user)[message.uid]
    finally:
        running.close()  # the other write-back ends

    wait_for(lambda: not actions.has_pending(account.pk), timeout=30, what="the write-back queued again to run")
    assert "\\Flagged" in srv.server_flags(dovecot, imap_user)[message.uid]
