"""The background fetch of older mail (mail/backfill.py), in process and in a real worker.

The tests taking `mail_server` run against Dovecot and Cyrus (tests/plugins/imap_servers.py).
"""

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from mail import backfill, imap, tasks
from mail.models import Folder, Message, SyncRun
from tests.plugins.celery_worker import start_worker, stop_worker
from tests.plugins.mail import create_account, make_raw, run_sync

OLD = datetime.now(UTC) - timedelta(days=800)


def deliver(dovecot, user, numbers, *, when=None, folder="INBOX"):
    for n in numbers:
        dovecot.deliver(user, make_raw(n), folder=folder, internaldate=when)


def old_day(n: int) -> datetime:
    return OLD - timedelta(days=30 - n)  # message n is a day newer than n - 1


def uids(folder) -> list[int]:
    return sorted(Message.objects.filter(folder=folder).values_list("uid", flat=True))


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.django_db
def test_older_mail_arrives_newest_first_in_batches_and_resumes_after_a_crash(
    mail_server, mail_user, alice, settings, monkeypatch
):
    settings.MAILHELPER_SYNC_BATCH = 3
    for n in range(10):  # UIDs 1-10, two years old, each a day newer than the one before
        mail_server.deliver(mail_user, make_raw(n), internaldate=old_day(n))
    deliver(mail_server, mail_user, range(10, 14))  # UIDs 11-14, recent
    account = create_account(alice.user, mail_user, mail_server)
    run_sync(account)
    inbox = account.folders.get(name="INBOX")
    assert uids(inbox) == [11, 12, 13, 14] and backfill.progress(account).total == 10

    outcome = backfill.backfill_account(account.pk, max_batches=1)
    assert (outcome.status, outcome.stored, outcome.more) == ("ok", 3, True)
    assert uids(inbox) == [8, 9, 10, 11, 12, 13, 14]  # the newest of the older mail first
    inbox.refresh_from_db()
    assert inbox.backfill_below_uid == 8 and inbox.backfill_done == 3
    status = backfill.progress(account)
    assert (status.done, status.total, status.running) == (3, 10, True)
    assert status.reached == old_day(7).replace(microsecond=0)

    # A worker killed while storing the next batch: nothing of it is kept, the rerun takes it again.
    real_store = backfill.sync.store_batch

    def crash(run, batch, progress=None):
        batch.also = lambda: (_ for _ in ()).throw(RuntimeError("killed"))
        real_store(run, batch, progress)

    monkeypatch.setattr(backfill.sync, "store_batch", crash)
    with pytest.raises(RuntimeError):
        backfill.backfill_account(account.pk, max_batches=1)
    monkeypatch.setattr(backfill.sync, "store_batch", real_store)
    assert uids(inbox) == [8, 9, 10, 11, 12, 13, 14]

    while backfill.backfill_account(account.pk, max_batches=1).more:
        pass
    assert uids(inbox) == list(range(1, 15))
    assert Message.objects.filter(account=account).count() == 14  # nothing twice
    inbox.refresh_from_db()
    assert (inbox.backfill_below_uid, inbox.backfill_done, inbox.backfill_total) == (None, 10, 10)
    assert backfill.progress(account).reached == old_day(0).replace(microsecond=0)
    assert backfill.backfill_account(account.pk).status == "nothing"
    assert run_sync(account).messages_new == 0


@pytest.mark.django_db
def test_a_batch_fetched_before_the_server_renumbered_the_folder_is_dropped(
    dovecot, imap_user, alice, settings, monkeypatch
):
    settings.MAILHELPER_SYNC_BATCH = 2
    deliver(dovecot, imap_user, range(6), when=OLD)
    deliver(dovecot, imap_user, range(6, 8))
    account = create_account(alice.user, imap_user, dovecot)
    run_sync(account)
    real_fetch = imap.ImapSession.fetch_messages

    def renumbered_meanwhile(self, batch_uids):
        # What the sync's detach does when it meets a new UIDVALIDITY, while this batch is on the wire.
        Folder.objects.filter(account=account).update(backfill_uidvalidity=None, backfill_below_uid=None)
        yield from real_fetch(self, batch_uids)

    monkeypatch.setattr(imap.ImapSession, "fetch_messages", renumbered_meanwhile)
    outcome = backfill.backfill_account(account.pk)
    assert outcome.stored == 0 and not outcome.more
    assert Message.objects.filter(account=account).count() == 2


@pytest.mark.django_db
def test_after_a_uidvalidity_reset_the_backfill_brings_only_what_is_missing(mail_server, mail_user, alice):
    deliver(mail_server, mail_user, range(6), when=OLD)
    deliver(mail_server, mail_user, range(6, 9))
    account = create_account(alice.user, mail_user, mail_server)
    run_sync(account)
    backfill.backfill_account(account.pk, max_batches=1)  # MAILHELPER_SYNC_BATCH 200: all six at once
    held = set(Message.objects.filter(account=account).values_list("pk", flat=True))
    assert len(held) == 9
    mail_server.reset_uidvalidity(mail_user)
    run = run_sync(account)
    assert (run.status, run.messages_new, run.messages_expunged) == (SyncRun.Status.SUCCESS, 0, 0)
    inbox = account.folders.get(name="INBOX")
    assert inbox.backfill_below_uid is None  # everything older is held already (re-attached)
    assert set(inbox.messages.filter(expunged_at__isnull=True).values_list("pk", flat=True)) == held


@pytest.mark.django_db
def test_the_status_line_on_the_account_page_and_its_poll(alice_client, alice, bob, dovecot, imap_user):
    deliver(dovecot, imap_user, range(3), when=OLD)
    deliver(dovecot, imap_user, range(3, 5))
    account = create_account(alice.user, imap_user, dovecot)
    run_sync(account)
    page = alice_client.get(reverse("mail:account-edit", args=[account.pk])).content.decode()
    assert "Older mail: 0 of 3 fetched (0%)" in page and 'hx-trigger="every 5s"' in page
    backfill.backfill_account(account.pk)
    poll = alice_client.get(reverse("mail:account-backfill", args=[account.pk])).content.decode()
    assert "Older mail: all 3 fetched, back to" in poll and "hx-trigger" not in poll

    bobs = create_account(bob.user, imap_user, dovecot, name="bob's")
    assert alice_client.get(reverse("mail:account-backfill", args=[bobs.pk])).status_code == 404
    assert alice_client.get(reverse("mail:account-edit", args=[bobs.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_in_a_worker_the_backfill_runs_beside_the_syncs_until_all_older_mail_is_here(
    alice, imap_user, dovecot, tmp_path
):
    deliver(dovecot, imap_user, range(60), when=OLD)
    deliver(dovecot, imap_user, range(60, 65))
    account = create_account(alice.user, imap_user, dovecot)
    queue = f"backfill-{os.getpid()}"
    worker = start_worker(
        tmp_path / "worker.log",
        concurrency=2,
        extra_args=("-Q", f"{queue},sync,analysis,celery"),
        env_overrides={"MAILHELPER_SYNC_BATCH": "5"},  # 12 batches, 3 calls of the task
        hostname=f"{queue}@test",
    )
    try:
        first = tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)
        assert first["new"] == 5
        deliver(dovecot, imap_user, range(100, 102))  # new mail while older mail comes in
        second = tasks.sync_account.delay(account_id=str(account.pk)).get(timeout=60)
        assert second["status"] == "success" and second["new"] == 2  # not held up by the backfill
        wait_for(lambda: not backfill.has_pending(account.pk), 90, "the backfill to finish")
        assert Message.objects.filter(account=account).count() == 67
        inbox = account.folders.get(name="INBOX")
        assert uids(inbox) == sorted(set(range(1, 66)) | {66, 67})
        assert backfill.progress(account).done == 60
        # Analysis followed the backfill's batches (announced by the task).
        wait_for(
            lambda: not Message.objects.filter(account=account, analysis__state="pending").exists(),
            60,
            "the analysis of the older mail",
        )
    finally:
        stop_worker(worker)
