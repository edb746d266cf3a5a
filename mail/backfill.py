"""The background fetch of older mail: what a first sync's window left out, newest first, in batches.

Plain Python over models and mail.imap (the task mail.backfill_account calls it). The contract:

- The plan is the folder's (Folder.backfill_*), written by its first sync (mail/sync.py, "First
  sync"): the UIDs below `backfill_below_uid` that arrived before `backfill_before` (every one when
  empty), under `backfill_uidvalidity`. An empty `backfill_below_uid` means nothing is left.
- Newest first: each batch takes the highest UIDs still to fetch. It is fetched, parsed and sealed,
  then stored by sync.store_batch in one transaction together with the new cursor (the lowest UID
  of the batch), the count and how far back it reached. So a worker killed between batches loses
  nothing and stores nothing twice: the next call starts below the committed cursor, and leaves
  out any UID of the range that is stored already (re-attached after a UIDVALIDITY change).
- Beside the ordinary sync, not under its lock, so new mail keeps arriving while years of old mail
  come in. They never insert the same message: the sync fetches UIDs at or above the UIDNEXT of the
  folder's first sync, the backfill only UIDs below it. A UIDVALIDITY change is the one thing they
  share: the sync cancels the plan under the folder's row lock, and the batch's transaction takes
  that lock and checks the plan is still the one it fetched for, else the batch is rolled back
  ("the server renumbered the folder meanwhile"). The same check keeps a second backfill of the
  account (which its own advisory lock already prevents) from storing a batch twice.
- Bounded: one call does at most `max_batches` batches and returns whether work is left, so the
  task gives its worker back to the sync queue between calls and queues itself again. Every
  successful sync of the account queues it too, so a lost task only delays the backfill.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Sum

from accounts import keyring
from core.db.locks import lock_key, try_advisory_lock

from . import imap, sync
from .models import Folder, MailAccount, Message

log = logging.getLogger(__name__)

#: Batches (of MAILHELPER_SYNC_BATCH messages) per call: a few seconds' work on a local server.
BATCHES_PER_CALL = 5


class PlanChanged(Exception):
    """The folder's plan changed between fetching a batch and storing it: the batch is rolled back."""


@dataclass
class BackfillOutcome:
    status: str  # ok | nothing | busy | locked | off
    stored: int = 0
    more: bool = False


def pending_folders(account_id):
    """The account's folders with older mail still to fetch."""
    return Folder.objects.filter(
        account_id=account_id, sync_enabled=True, exists_on_server=True, backfill_below_uid__isnull=False
    )


def has_pending(account_id) -> bool:
    return pending_folders(account_id).exists()


def backfill_account(account_id, max_batches: int = BATCHES_PER_CALL) -> BackfillOutcome:
    """Fetch up to `max_batches` batches of the account's older mail. Safe to call again at any time.

    Raises imap's connection and login errors like the sync does; what was committed stays.
    """
    account = MailAccount.objects.filter(pk=account_id).first()
    if account is None or not account.enabled or account.is_pop3:
        return BackfillOutcome("off")
    if not has_pending(account.pk):
        return BackfillOutcome("nothing")
    if keyring.is_locked(account.owner_id):
        return BackfillOutcome("locked", more=True)
    with try_advisory_lock(lock_key(f"mail/backfill/{account.pk}")) as acquired:
        if not acquired:
            return BackfillOutcome("busy", more=True)
        stored, budget = 0, max_batches
        with imap.ImapSession(sync.server_config(account)) as session:
            sealer = sync.Sealer.for_owner(account.owner_id)
            # The inbox first: it is what the user looks at.
            for folder in sorted(pending_folders(account.pk), key=lambda f: (f.special_use != "inbox", f.name)):
                if budget <= 0:
                    break
                try:
                    done, budget = _backfill_folder(session, account, folder, sealer, budget)
                except imap.ImapFolderError as exc:  # this folder now; the others may work
                    log.info("backfill of folder %s: %s", folder.pk, exc)
                    continue
                stored += done
        return BackfillOutcome("ok", stored, has_pending(account.pk))


def _backfill_folder(
    session: imap.ImapSession, account: MailAccount, folder: Folder, sealer: sync.Sealer, budget: int
) -> tuple[int, int]:
    """Batches of one folder, newest first, while the budget lasts; returns (stored, budget left)."""
    state = session.select(folder.name, readonly=True)
    if state.uidvalidity != folder.backfill_uidvalidity:
        return 0, budget  # renumbered: the next sync resyncs the folder and plans anew
    below = folder.backfill_below_uid
    candidates = session.search_uids(before=folder.backfill_before, below=below)
    held = set(
        Message.objects.filter(folder=folder, uidvalidity=state.uidvalidity, uid__lt=below).values_list(
            "uid", flat=True
        )
    )
    todo = [uid for uid in reversed(candidates) if uid not in held]  # newest first
    if not todo:
        with contextlib.suppress(PlanChanged), transaction.atomic():
            _advance(folder, None, 0, None)
        return 0, budget
    size = settings.MAILHELPER_SYNC_BATCH
    ahead = todo[: size * budget]
    stored = 0
    for uids in sync.size_batches(ahead, session.sizes(ahead), size)[:budget]:
        last = uids[-1] == todo[-1]
        batch = sync.StoredBatch()
        for fetched in session.fetch_messages(uids):
            batch.add(*sealer.seal(*sync.build_message(account, folder, state.uidvalidity, fetched)))
            batch.size += len(fetched.raw)
        oldest = min((m.internal_date or m.sort_date for m in batch.messages), default=None)
        cursor = None if last else min(uids)
        batch.also = functools.partial(_advance, folder, cursor, len(batch.messages), oldest)
        try:
            sync.store_batch(None, batch)
        except PlanChanged:
            log.info("backfill of folder %s: plan changed meanwhile, batch dropped", folder.pk)
            return stored, 0
        stored += len(batch.messages)
        budget -= 1
    return stored, budget


def _advance(folder: Folder, cursor: int | None, count: int, oldest: datetime | None) -> None:
    """Move the folder's plan on, in the batch's transaction, if it is still the one this call works on."""
    row = Folder.objects.select_for_update().only(*sync.BACKFILL_FIELDS).get(pk=folder.pk)
    if (row.backfill_uidvalidity, row.backfill_below_uid) != (folder.backfill_uidvalidity, folder.backfill_below_uid):
        raise PlanChanged
    folder.backfill_below_uid = cursor
    if cursor is None:
        folder.backfill_uidvalidity = None
    folder.backfill_done += count
    if oldest is not None and (folder.backfill_reached is None or oldest < folder.backfill_reached):
        folder.backfill_reached = oldest
    folder.save(update_fields=sync.BACKFILL_FIELDS)


# --- what the account page shows -------------------------------------------------------------------


WINDOWS_WITH_BACKFILL = (MailAccount.FirstSync.SINCE, MailAccount.FirstSync.NEWEST)


@dataclass(frozen=True)
class BackfillProgress:
    enabled: bool
    total: int
    done: int
    reached: datetime | None
    running: bool  # older mail is still to fetch

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))


def progress(account: MailAccount) -> BackfillProgress:
    """How far the background fetch of older mail has come, over the account's synced folders."""
    folders = account.folders.filter(sync_enabled=True, exists_on_server=True)
    totals = folders.aggregate(total=Sum("backfill_total"), done=Sum("backfill_done"), reached=Min("backfill_reached"))
    return BackfillProgress(
        enabled=account.backfill_older and account.first_sync in WINDOWS_WITH_BACKFILL,
        total=totals["total"] or 0,
        done=totals["done"] or 0,
        reached=totals["reached"],
        running=folders.filter(backfill_below_uid__isnull=False).exists(),
    )
