"""The POP3 part of a sync: the inbox of a POP3 account, incrementally by UIDL.

Called by sync.sync_account under the account's lock with a claimed run, exactly like the IMAP
part (sync._sync_imap); errors of mail/pop3.py are recorded there alike. The rules it keeps:

- POP3 has one mailbox, the inbox. Its messages go into the account's INBOX Folder row, with no
  UID, flags or arrival time (POP3 has none): read and flagged state exist only here.
- The sync state is the set of UIDLs stored (Pop3Seen). A listed UIDL not in that set is new. Each
  batch's Pop3Seen rows are written in the transaction that stores its messages (sync.store_batch,
  `also`), so a worker killed at any point leaves every message either stored with its UIDL or not
  stored at all: the rerun fetches exactly what is missing, never a message twice.
- Messages stay on the server by default. With `pop3_delete_after_days` set, a message stored here
  at least that many days ago is deleted from the server (DELE) at the end of a sync, and only one
  we hold (it has a Pop3Seen row, written with the message). The DELEs take effect with the QUIT
  that ends a sync whose every step succeeded; a sync that fails before it deletes nothing.
- The local copy of a message deleted from the server (by us or by another client) stays: the
  user downloaded it. Its Pop3Seen row is dropped once we deleted it and the server no longer
  lists it; other rows stay, because a UIDL that a server stops listing for a while and lists again
  (some providers do) must not come back as new mail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import pop3
from .models import Folder, MailAccount, Pop3Seen, SyncRun
from .sync import (
    ProgressCallback,
    Sealer,
    StoredBatch,
    new_message,
    prefetched,
    record_progress,
    server_config,
    size_batches,
    store_batch,
)

log = logging.getLogger(__name__)

INBOX = "INBOX"


def inbox(account: MailAccount) -> Folder:
    """The one folder of a POP3 account (created on its first sync)."""
    folder, _ = Folder.objects.get_or_create(
        account=account,
        name=INBOX,
        defaults={"special_use": Folder.SpecialUse.INBOX, "sync_enabled": True, "delimiter": ""},
    )
    return folder


def sync_inbox(account: MailAccount, run: SyncRun, progress: ProgressCallback | None = None) -> None:
    """Store the new messages of the account's POP3 maildrop, then delete what is due (see the docstring)."""
    folder = inbox(account)
    with pop3.Pop3Session(server_config(account)) as session:
        run.folders_total, run.current_folder = 1, folder.display_name
        record_progress(run, "folders_total", "current_folder")
        if progress:
            progress(run)
        listed = session.listing()
        _store_new(session, account, folder, run, listed, progress)
        due = _due_for_deletion(account, listed)
        for item in due:
            session.delete(item.number)
    # QUIT answered: the server has deleted what was marked (an exception above skips this).
    now = timezone.now()
    if due:
        Pop3Seen.objects.filter(account=account, uidl__in=[i.uidl for i in due]).update(deleted_at=now)
        run.messages_expunged += len(due)
        log.info("pop3 sync of account %s: %d message(s) deleted from the server", account.pk, len(due))
    # Deleted by us earlier and no longer listed: gone for good, the row has done its work.
    listed_uidls = [item.uidl for item in listed]
    Pop3Seen.objects.filter(account=account, deleted_at__isnull=False).exclude(uidl__in=listed_uidls).delete()
    folder.server_exists, folder.last_synced_at = len(listed) - len(due), now
    folder.save(update_fields=["server_exists", "last_synced_at"])
    run.folders_done = 1
    record_progress(run, "folders_done", "messages_expunged")


def _store_new(
    session: pop3.Pop3Session,
    account: MailAccount,
    folder: Folder,
    run: SyncRun,
    listed: list[pop3.ListedMessage],
    progress: ProgressCallback | None,
) -> None:
    seen = set(Pop3Seen.objects.filter(account=account).values_list("uidl", flat=True))
    new: dict[str, pop3.ListedMessage] = {}
    for item in listed:
        if item.uidl not in seen and item.uidl not in new:  # a UIDL listed twice is one message
            new[item.uidl] = item
    if not new:
        return
    sealer = Sealer.for_owner(account.owner_id)  # fetched here: the helper thread has no DB access
    sizes = {uidl: item.size for uidl, item in new.items()}

    def build(uidls: list[str]) -> StoredBatch:
        """Runs in the prefetch thread: POP3, parsing and encryption only, no database."""
        batch = StoredBatch()
        seen_rows = []
        for uidl in uidls:
            raw = session.retrieve(new[uidl].number)
            message, parts = sealer.seal(*new_message(account, folder, raw, size=len(raw)))
            batch.add(message, parts)
            batch.size += len(raw)
            seen_rows.append(Pop3Seen(account=account, uidl=uidl, message_id=message.pk))
        batch.also = lambda: Pop3Seen.objects.bulk_create(seen_rows)
        return batch

    for batch in prefetched(build, size_batches(list(new), sizes, settings.MAILHELPER_SYNC_BATCH)):
        store_batch(run, batch, progress)


def _due_for_deletion(account: MailAccount, listed: list[pop3.ListedMessage]) -> list[pop3.ListedMessage]:
    """Listed messages that we hold and that were stored at least `pop3_delete_after_days` ago."""
    days = account.pop3_delete_after_days
    if days is None:
        return []
    cutoff = timezone.now() - timedelta(days=days)
    held = set(
        Pop3Seen.objects.filter(
            account=account, stored_at__lte=cutoff, message__isnull=False, deleted_at__isnull=True
        ).values_list("uidl", flat=True)
    )
    due, marked = [], set()
    for item in listed:
        if item.uidl in held and item.uidl not in marked:
            due.append(item)
            marked.add(item.uidl)
    return due
