"""Fault tests on the real services: each fault lands mid-sync, and the data and account state must come out right.

Why: the sync is the product's heartbeat, and these are the faults a self-hosted box sees (a
service restart, a dropped connection); the system being replaced lost tasks to Redis errors.
Every test here interrupts a sync at a known point (the progress callback, or a worker's stored
progress), then checks that nothing was stored half-way and that the next sync completes
with every message exactly once.

A worker killed mid-sync is covered in tests/mail/test_tasks.py
(test_a_worker_killed_mid_sync_is_redelivered_and_completes_without_duplicates) and not repeated here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psycopg
import pytest
from django.db import Error as DjangoDbError
from django.db import connection

from analysis.models import MessageAnalysis
from mail.models import Folder, MailAccount, Message, SyncRun
from mail.sync import sync_account
from tests.plugins.celery_worker import private_redis, service_env, start_private_worker, stop_worker
from tests.plugins.mail import create_account, make_raw, run_sync
from tests.plugins.mailservers import free_port

pytestmark = pytest.mark.slow

TOTAL = 60


def seed(dovecot, user, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        dovecot.deliver(user, make_raw(i))


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll with a deadline: a fault test must never hang the suite."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def assert_complete_and_consistent(account: MailAccount, expected: int | None = None) -> None:
    """Every stored message is whole (raw source present, analysis queued) and no UID is stored twice."""
    messages = Message.objects.filter(account=account)
    uids = list(messages.values_list("folder_id", "uidvalidity", "uid"))
    assert len(uids) == len(set(uids)), "a message is stored twice"
    assert all(m.raw for m in messages), "a message was stored without its source"
    assert MessageAnalysis.objects.filter(message__account=account).count() == messages.count()
    if expected is not None:
        inbox = Folder.objects.get(account=account, name="INBOX")
        assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(1, expected + 1))


@pytest.mark.django_db
def test_imap_server_stopped_mid_fetch_fails_retryably_and_the_next_sync_completes(
    mail_server, mail_user, alice, settings
):
    """On Dovecot and Cyrus (tests/plugins/imap_servers.py): each cuts its clients when stopped."""
    settings.MAILHELPER_SYNC_BATCH = 10
    seed(mail_server, mail_user, TOTAL)
    account = create_account(alice.user, mail_user, mail_server)
    server = mail_server.server
    stopped: list[int] = []

    def stop_midway(run: SyncRun) -> None:
        if not stopped and run.messages_new >= 20:
            stopped.append(run.messages_new)
            server.stop()

    try:
        outcome = sync_account(account.pk, progress=stop_midway)
    finally:
        if not server.running:
            server.start()

    assert stopped, "the server must have been stopped during the sync"
    assert outcome.run.status == SyncRun.Status.FAILED and outcome.retryable, outcome.run.error
    stored = Message.objects.filter(account=account).count()
    assert 20 <= stored < TOTAL, "the stop must land mid-fetch"
    assert outcome.run.messages_new == stored  # the run's count matches what was committed
    assert_complete_and_consistent(account)

    again = run_sync(account)
    assert again.status == SyncRun.Status.SUCCESS, again.error
    assert again.messages_new == TOTAL - stored
    assert_complete_and_consistent(account, TOTAL)
    account.refresh_from_db()
    assert account.status == MailAccount.Status.OK and account.last_sync_at is not None


def _terminate_backend(pid: int) -> None:
    """Kill one PostgreSQL backend from a separate connection, as a server restart or a network drop would."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db.get("PASSWORD") or None,
        dbname=db["NAME"], autocommit=True,
    ) as other:  # fmt: skip
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_postgres_connection_dropped_mid_sync_then_a_rerun_completes_without_duplicates(
    dovecot, imap_user, alice, settings
):
    settings.MAILHELPER_SYNC_BATCH = 10
    seed(dovecot, imap_user, TOTAL)
    account = create_account(alice.user, imap_user, dovecot)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        sync_pid = cursor.fetchone()[0]
    dropped: list[int] = []

    def drop_midway(run: SyncRun) -> None:
        if not dropped and run.messages_new >= 20:
            dropped.append(run.messages_new)
            _terminate_backend(sync_pid)

    with pytest.raises(DjangoDbError):
        sync_account(account.pk, progress=drop_midway)
    assert dropped
    connection.close()  # what Django does between requests / tasks: the next query reconnects

    stale = SyncRun.objects.get(account=account)
    # The run records the interruption when the database answers again (else queue_run marks it later).
    assert stale.status == SyncRun.Status.FAILED and "Interrupted" in stale.error
    stored = Message.objects.filter(account=account).count()
    assert 20 <= stored < TOTAL
    assert stale.messages_new == stored  # counts were committed with their batch, nothing half-stored
    assert_complete_and_consistent(account)

    rerun = run_sync(account)
    assert rerun.status == SyncRun.Status.SUCCESS, rerun.error
    assert rerun.messages_new == TOTAL - stored
    assert_complete_and_consistent(account, TOTAL)
    account.refresh_from_db()
    assert account.status == MailAccount.Status.OK and account.last_sync_at is not None


# ---- Redis restarted during a sync ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redis_restarted_mid_sync_the_sync_completes_and_the_worker_reconnects(dovecot, imap_user, alice, tmp_path):
    from mail import tasks
    from mailhelper.celery import app

    total = 400
    for i in range(total):
        dovecot.deliver(imap_user, make_raw(i, body_kb=20))
    account = create_account(alice.user, imap_user, dovecot)
    run = SyncRun.objects.create(account=account, trigger=SyncRun.Trigger.MANUAL)
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    queue = f"redistest-{os.getpid()}"
    env = {
        **service_env(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": f"redis://127.0.0.1:{port}/1",
        "MAILHELPER_SYNC_BATCH": "10",
    }
    with private_redis(port) as restart_redis:
        worker = start_private_worker(tmp_path / "worker.log", env, [queue], f"{queue}@test")
        try:
            with app.connection_for_write(broker) as conn:
                tasks.sync_account.apply_async(
                    kwargs={"account_id": str(account.pk), "run_id": run.pk}, queue=queue, connection=conn
                )
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).messages_new >= 30, 60, 0.02, "the sync to be under way")
            restart_redis()
            assert SyncRun.objects.get(pk=run.pk).messages_new < total, "the restart must land mid-sync"
            finished = wait_for(
                lambda: SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.SUCCESS).first(),
                90,
                0.2,
                f"the sync to finish (worker log: {worker.log_path})",
            )
            assert finished.messages_new == total
            assert_complete_and_consistent(account, total)

            # The worker reconnected to the restarted broker: a task sent now is consumed and run.
            dovecot.deliver(imap_user, make_raw(total))
            second = SyncRun.objects.create(account=account, trigger=SyncRun.Trigger.MANUAL)
            with app.connection_for_write(broker) as conn:
                tasks.sync_account.apply_async(
                    kwargs={"account_id": str(account.pk), "run_id": second.pk}, queue=queue, connection=conn
                )
            after = wait_for(
                lambda: SyncRun.objects.filter(pk=second.pk, status=SyncRun.Status.SUCCESS).first(),
                60,
                0.2,
                f"a task sent after the restart to run (worker log: {worker.log_path})",
            )
            assert after.messages_new == 1
        finally:
            stop_worker(worker)
    assert_complete_and_consistent(account, total + 1)
    account.refresh_from_db()
    assert account.status == MailAccount.Status.OK
