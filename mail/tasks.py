"""Celery wrappers: ids in, service call, retry policy. No logic of their own.

This module also subscribes to `signals.outbox_changed` and `signals.server_mail_changed` (connected
by MailConfig.ready): services announce a changed outbox, the IDLE watcher a changed mailbox, and the
write-back or the sync is queued here, so no service imports a task.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.dispatch import receiver

from . import actions, backfill, imap, signals, snooze, sync, sync_follow_ups
from .models import MailAccount

log = logging.getLogger(__name__)

WRITE_BACK_QUEUED = "mailhelper:write-back-queued:{}"
PUSH_SYNC_QUEUED = "mailhelper:push-sync-queued:{}"
BACKFILL_QUEUED = "mailhelper:backfill-queued:{}"
_BACKFILL_QUEUED_TTL = 600  # a lost task only delays: the mark expires, and the next sync queues it again
_PUSH_RETRIES_WHILE_RUNNING = 3  # a push that finds a sync running tries again, in case it came too late
_WRITE_BACK_BUSY_DELAY = 3  # seconds: a write-back is one IMAP session, usually over by then
_WRITE_BACK_QUEUED_TTL = 300  # a lost task only delays: the mark expires, and syncs replay a stale outbox
STALE_OUTBOX = timedelta(minutes=2)  # longer than a queued write-back normally waits for a worker


def _backoff(retries: int) -> int:
    return min(30 * 2**retries, 30 * 60)  # 30 s, 1, 2, 4, 8 min ... capped at 30 min


# No STARTED result row: the sync's SyncRun says it is running (with its heartbeat), and that extra
# write was a tenth of a no-change sync's time in the worker (bench/fanout.py, docs/notes/fanout.md).
@shared_task(bind=True, name="mail.sync_account", max_retries=None, track_started=False)
def sync_account(self, account_id: str, run_id: int | None = None, trigger: str = "schedule") -> dict:
    from django.conf import settings

    if trigger == "push":
        cache.delete(PUSH_SYNC_QUEUED.format(account_id))  # news from now on get a sync of their own
    try:
        outcome = sync.sync_account(
            account_id, run_id=run_id, trigger=trigger, progress=sync.announce_new_mail(account_id)
        )
    except MailAccount.DoesNotExist:
        return {"status": "gone"}  # deleted after its task was queued
    run = outcome.run
    retry_push = trigger == "push" and self.request.retries < _PUSH_RETRIES_WHILE_RUNNING
    if retry_push and run.error == sync.ALREADY_RUNNING:
        # The running sync may have listed the folder before this mail arrived: look again after it.
        raise self.retry(
            countdown=settings.MAILHELPER_IDLE_DEBOUNCE_SECONDS * 5,
            kwargs={"account_id": account_id, "trigger": trigger},
        )
    if outcome.retryable:
        if self.request.retries < settings.MAILHELPER_SYNC_MAX_RETRIES:
            countdown = _backoff(self.request.retries)
            sync.mark_retrying(run, countdown)
            raise self.retry(
                countdown=countdown, kwargs={"account_id": account_id, "run_id": run.pk, "trigger": trigger}
            )
        sync.mark_unreachable(run)
    if run.status == "success" and run.messages_new:
        signals.new_mail_synced.send(sender=MailAccount, account_id=account_id)  # analysis queues its task
    follow_ups = sync_follow_ups.after_sync(account_id, STALE_OUTBOX) if run.status == "success" else None
    if follow_ups and follow_ups.backfill:
        queue_backfill(account_id)  # older mail keeps coming (again, if its task was lost)
    if follow_ups and follow_ups.write_back:
        # The server answers again: replay what has waited in the outbox for a while (a write-back
        # task that ran out of retries while the server was down would leave it waiting for good).
        queue_write_back(account_id)
    return {"run": run.pk, "status": run.status, "new": run.messages_new}


@shared_task(name="mail.settle_stale_sync_runs")
def settle_stale_sync_runs() -> dict:
    """Periodic (beat row from mail/migrations/0011): runs whose worker died become interrupted."""
    return {"settled": sync.settle_stale_runs()}


@shared_task(name="mail.wake_due")
def wake_due() -> dict:
    """Every minute (one beat row for all messages): snoozed mail comes back, follow-ups fire."""
    woken = snooze.wake_due()
    return {"snoozed": woken.snoozed, "reminded": woken.reminded, "answered": woken.answered}


@shared_task(name="mail.backfill_account")
def backfill_account(account_id: str) -> dict:
    """A few batches of the account's older mail (mail/backfill.py), then queued again while some is left.

    On the sync queue, in short calls, so the ordinary syncs of all accounts go on between them.
    """
    cache.delete(BACKFILL_QUEUED.format(account_id))
    try:
        outcome = backfill.backfill_account(account_id)
    except (imap.ImapConnectError, imap.ImapAuthError) as exc:
        # The sync meets the same trouble and says so; its next success queues this again.
        log.info("backfill of account %s postponed: %s", account_id, type(exc).__name__)
        return {"status": "postponed"}
    if outcome.stored:
        signals.new_mail_synced.send(sender=MailAccount, account_id=account_id)  # analysis queues its task
    if outcome.more and outcome.status == "ok":
        queue_backfill(account_id)
    return {"status": outcome.status, "stored": outcome.stored, "more": outcome.more}


def queue_backfill(account_id: str) -> bool:
    """Queue the next call of the account's backfill unless one is queued and not started yet."""
    if not cache.add(BACKFILL_QUEUED.format(account_id), 1, timeout=_BACKFILL_QUEUED_TTL):
        return False
    backfill_account.apply_async(kwargs={"account_id": str(account_id)}, queue="sync")
    return True


def queue_write_back(account_id: str, countdown: int | None = None) -> bool:
    """Queue a write-back of the account's outbox unless one is queued and not started yet.

    Someone opening twenty messages in a row (each marks one read) needs one IMAP session, not
    twenty. The task clears the mark before it reads the outbox, so a change made after that gets
    a task of its own. Returns whether a task was queued.
    """
    if not cache.add(WRITE_BACK_QUEUED.format(account_id), 1, timeout=_WRITE_BACK_QUEUED_TTL):
        return False
    write_back.apply_async(kwargs={"account_id": str(account_id)}, countdown=countdown)
    return True


def queue_push_sync(account_id: str) -> bool:
    """Queue a sync for news from the server, unless one is queued and not started yet.

    One delivery brings several IDLE responses (EXISTS, then FETCH for its flags), and a burst of
    mail many more: the sync waits MAILHELPER_IDLE_DEBOUNCE_SECONDS, so they all fall into one.
    """
    from django.conf import settings

    delay = settings.MAILHELPER_IDLE_DEBOUNCE_SECONDS
    if not cache.add(PUSH_SYNC_QUEUED.format(account_id), 1, timeout=max(60, delay * 10)):
        return False
    sync_account.apply_async(kwargs={"account_id": str(account_id), "trigger": "push"}, countdown=delay)
    return True


@receiver(signals.server_mail_changed, dispatch_uid="mail.queue_push_sync")
def _sync_changed_mailbox(sender, account_id: str, **kwargs) -> None:
    queue_push_sync(account_id)


@receiver(signals.outbox_changed, dispatch_uid="mail.queue_write_back")
def _write_back_changed_outbox(sender, account_id: str, **kwargs) -> None:
    queue_write_back(account_id)


@shared_task(bind=True, name="mail.write_back", max_retries=8)
def write_back(self, account_id: str) -> dict:
    cache.delete(WRITE_BACK_QUEUED.format(account_id))
    try:
        done, failed = actions.write_back(account_id)
    except actions.WriteBackRunning:
        # The running one read the outbox before this task was queued: what was recorded since
        # waits for this account's next write-back, queued here unless one already is.
        queue_write_back(account_id, countdown=_WRITE_BACK_BUSY_DELAY)
        return {"status": "busy"}
    except (imap.ImapConnectError, imap.ImapAuthError) as exc:
        log.info("write-back for account %s postponed: %s", account_id, type(exc).__name__)
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    return {"done": done, "failed": failed}


@shared_task(name="mail.send_draft")
def send_draft(draft_id: str) -> dict:
    """Send one draft (queued by sending.queue_send); then write the Sent copy and flags back.

    Not retried automatically: a failed send waits for the user's "try again", so nothing goes out
    later by surprise. The service makes a redelivered task harmless (it never sends twice).
    """
    from . import sending
    from .models import Draft

    status = sending.send_draft(draft_id)
    if status == "sent":
        account_id = Draft.objects.filter(pk=draft_id).values_list("account_id", flat=True).first()
        queue_write_back(str(account_id))
    return {"status": status}
