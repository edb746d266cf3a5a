"""The sync service: brings an account's local copy in line with its IMAP server.

Plain Python over models and mail.imap (no Celery, no request), so the task, the management
command and the tests all run the same code. The rules it keeps (DESIGN.md, "Sync"):

- Per folder it remembers UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ and fetches only what changed:
  new UIDs above the highest one stored, flags changed since the last modseq (CONDSTORE) or a flag
  sweep, and expunged UIDs (only when the message count says something disappeared).
- A message's identity is (folder, uidvalidity, uid). Work is committed batch by batch, and every
  step looks at what is already stored, so a rerun after a crash adds nothing twice and picks up
  where the crash left off.
- One sync per account at a time, by a PostgreSQL advisory lock that dies with its connection.
- A UIDVALIDITY change, or a move made in the UI, is reconciled by Message-ID: messages we hold are
  re-attached to their new UIDs instead of being fetched and stored again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import keyring
from accounts.fields import seal_fields
from core.db.copy import copy_insert
from core.db.locks import try_advisory_lock

from . import imap, signals
from .models import Attachment, Folder, MailAccount, Message, PendingAction, SyncRun
from .parsing import parse_message
from .search_tokens import SearchKey
from .threading_keys import storable_thread_key

log = logging.getLogger(__name__)


class SyncError(Exception):
    """A sync could not complete; the message is fit for the user (no content, no secret)."""


class RetryableSyncError(SyncError):
    """Network trouble: the same sync may well work a little later."""


@dataclass
class SyncOutcome:
    run: SyncRun
    retryable: bool = False


ProgressCallback = Callable[[SyncRun], None]
_BATCH_BYTES = 32 * 1024 * 1024


def server_config(account: MailAccount) -> imap.ServerConfig:
    return imap.ServerConfig(
        host=account.imap_host,
        port=account.imap_port,
        security=account.imap_security,
        username=account.imap_username,
        password=account.imap_password,
        timeout=settings.MAILHELPER_IMAP_TIMEOUT,
    )


def _lock_key(account: MailAccount) -> int:
    return int.from_bytes(account.pk.bytes[:8], "big", signed=True)


def account_lock(account: MailAccount) -> AbstractContextManager[bool]:
    """One sync per account (see core.db.locks); yields whether this one may run."""
    return try_advisory_lock(_lock_key(account))


def is_sync_running(account: MailAccount) -> bool:
    """True while another connection holds the account's lock."""
    with account_lock(account) as acquired:
        return not acquired


STALE_QUEUED = timedelta(minutes=15)


def queue_run(account: MailAccount, trigger: str) -> tuple[SyncRun, bool]:
    """The run to show for a "sync now": an active one if there is one, else a new queued run.

    A run left "running" by a worker that died (its advisory lock is gone), or "queued" for longer
    than any broker delay, is marked interrupted instead of blocking every later "sync now".
    """
    active = account.sync_runs.filter(status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING]).first()
    if active is not None and _is_stale(account, active):
        _finish(active, SyncRun.Status.FAILED, "Interrupted (the worker stopped); a new sync was started.")
        active = None
    if active is not None:
        return active, False
    return SyncRun.objects.create(account=account, trigger=trigger), True


def _is_stale(account: MailAccount, run: SyncRun) -> bool:
    if run.status == SyncRun.Status.RUNNING:
        return not is_sync_running(account)
    return run.queued_at < timezone.now() - STALE_QUEUED


def record_progress(run: SyncRun, *fields: str) -> None:
    """Save some of a running run's fields, and its heartbeat with them.

    Every save during a sync goes through here (each batch, each folder), so `heartbeat_at` says
    when the run last did something. Only while the run is "running": a run settled meanwhile
    (see settle_stale_runs) stays as it was settled.
    """
    run.heartbeat_at = timezone.now()
    values = {field: getattr(run, field) for field in fields}
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(heartbeat_at=run.heartbeat_at, **values)


# --- folders -------------------------------------------------------------------------------------


def refresh_folders(account: MailAccount, server_folders: list[imap.ServerFolder]) -> list[Folder]:
    """Mirror the server's folder list; INBOX is synced by default, new folders are not."""
    existing = {f.name: f for f in account.folders.all()}
    seen = set()
    for sf in server_folders:
        if not sf.selectable:
            continue
        seen.add(sf.name)
        folder = existing.get(sf.name)
        if folder is None:
            existing[sf.name] = Folder.objects.create(
                account=account,
                name=sf.name,
                delimiter=sf.delimiter,
                special_use=sf.special_use,
                sync_enabled=sf.special_use == "inbox",
            )
        elif (folder.special_use, folder.delimiter, folder.exists_on_server) != (sf.special_use, sf.delimiter, True):
            folder.special_use, folder.delimiter, folder.exists_on_server = sf.special_use, sf.delimiter, True
            folder.save(update_fields=["special_use", "delimiter", "exists_on_server"])
    gone = [f.pk for name, f in existing.items() if name not in seen and f.exists_on_server]
    if gone:
        Folder.objects.filter(pk__in=gone).update(exists_on_server=False)
    return list(account.folders.filter(exists_on_server=True))


# --- one folder --------------------------------------------------------------------------------------


def _flag_fields(flags: tuple[str, ...]) -> dict:
    lowered = {f.lower() for f in flags}
    return {
        "seen": "\\seen" in lowered,
        "flagged": "\\flagged" in lowered,
        "answered": "\\answered" in lowered,
        "draft": "\\draft" in lowered,
        "keywords": sorted(f for f in flags if not f.startswith("\\")),
    }


class FolderSync:
    """Sync of one folder within an open session; counts go to the run as it goes."""

    def __init__(self, session: imap.ImapSession, folder: Folder, run: SyncRun, progress: ProgressCallback | None):
        self.session, self.folder, self.run, self.progress = session, folder, run, progress
        self.account = folder.account
        self.batch = settings.MAILHELPER_SYNC_BATCH

    def run_sync(self) -> None:
        folder = self.folder
        state = self.session.select(folder.name, readonly=True)
        if folder.uidvalidity is not None and folder.uidvalidity != state.uidvalidity:
            self._detach_for_new_uidvalidity(state.uidvalidity)
        self._fetch_new(state)
        self._update_flags(state)
        self._detect_expunged(state)
        folder.uidvalidity, folder.uidnext, folder.highestmodseq = state.uidvalidity, state.uidnext, state.highestmodseq
        folder.server_exists, folder.last_synced_at = state.exists, timezone.now()
        folder.save(update_fields=["uidvalidity", "uidnext", "highestmodseq", "server_exists", "last_synced_at"])

    def _messages(self, uidvalidity: int):
        return Message.objects.filter(folder=self.folder, uidvalidity=uidvalidity)

    def _detach_for_new_uidvalidity(self, new_uidvalidity: int) -> None:
        """The server renumbered the folder: old UIDs mean nothing now.

        Messages we hold lose their UID and are re-attached by Message-ID while the folder is
        fetched again (see _fetch_new), so nothing is stored twice; what is not found is marked
        expunged at the end.
        """
        log.info("folder %s: UIDVALIDITY changed, reconciling by Message-ID", self.folder.pk)
        with transaction.atomic():
            Message.objects.filter(folder=self.folder, expunged_at__isnull=True).exclude(
                uidvalidity=new_uidvalidity
            ).update(uid=None, uidvalidity=None, modseq=None)
            self.folder.highestmodseq = None
            self.folder.save(update_fields=["highestmodseq"])

    def _fetch_new(self, state: imap.FolderState) -> None:
        # Every UID below the uidnext of the last completed sync was handled then, even if its
        # message has since been moved out locally (and is still here on the server until the
        # write-back runs); above it, what we stored before a crash tells where to resume.
        first_new = self._messages(state.uidvalidity).aggregate(m=Max("uid"))["m"] or 0
        first_new += 1
        if self.folder.uidvalidity == state.uidvalidity and self.folder.uidnext:
            first_new = max(first_new, self.folder.uidnext)
        if state.uidnext is not None and state.uidnext <= first_new and not self._has_detached():
            return  # nothing new: no SEARCH needed
        uids = self.session.uids_from(first_new)
        if uids:
            existing = set(self._messages(state.uidvalidity).filter(uid__gte=uids[0]).values_list("uid", flat=True))
            uids = [u for u in uids if u not in existing]
        if uids and self._has_detached():
            reattached: set[int] = set()
            for start in range(0, len(uids), self.batch):
                reattached |= self._reattach(state.uidvalidity, uids[start : start + self.batch])
            uids = [u for u in uids if u not in reattached]
        if uids:
            self._fetch_and_store(state.uidvalidity, uids)
        self._expunge_unmatched_detached()

    def _has_detached(self) -> bool:
        return Message.objects.filter(folder=self.folder, uid__isnull=True, expunged_at__isnull=True).exists()

    def _batches(self, uids: list[int]) -> list[list[int]]:
        """Batches of at most `batch` messages and about 32 MB, so a folder of 25 MB messages
        does not hold gigabytes in memory."""
        sizes = self.session.sizes(uids)
        batches: list[list[int]] = [[]]
        batch_bytes = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if batches[-1] and (len(batches[-1]) >= self.batch or batch_bytes + size > _BATCH_BYTES):
                batches.append([])
                batch_bytes = 0
            batches[-1].append(uid)
            batch_bytes += size
        return [b for b in batches if b]

    def _fetch_and_store(self, uidvalidity: int, uids: list[int]) -> None:
        """Fetch, parse and encrypt the next batch in a helper thread while this one writes.

        The helper thread only talks IMAP, parses and encrypts (no database); this thread only
        writes, so network, CPU and PostgreSQL overlap. It holds one batch ahead at most.
        """

        dek = keyring.dek_for(self.account.owner_id)  # fetched here: the helper thread has no DB access
        search_key = SearchKey.from_data_key(dek)

        def build(batch: list[int]) -> tuple[list[Message], list[Attachment], int]:
            messages, attachments, size = [], [], 0
            for fetched in self.session.fetch_messages(batch):
                message, parts = build_message(self.account, self.folder, uidvalidity, fetched)
                message.thread_key = storable_thread_key(message.thread_key, search_key)
                seal_fields(message, dek)  # compress + encrypt here, in parallel with the writes
                for part in parts:
                    seal_fields(part, dek)
                messages.append(message)
                attachments.extend(parts)
                size += len(fetched.raw)
            return messages, attachments, size

        for messages, attachments, size in _prefetched(build, self._batches(uids)):
            with transaction.atomic():
                copy_insert(Message, messages)
                copy_insert(Attachment, attachments)
                # Receivers write in this transaction (analysis queues each message): a lost task delays, never skips.
                signals.messages_stored.send(sender=Message, messages=messages)
                run = self.run
                run.messages_new += len(messages)
                run.bytes_fetched += size
                record_progress(run, "messages_new", "bytes_fetched")
            if self.progress:
                self.progress(self.run)

    def _reattach(self, uidvalidity: int, uids: list[int]) -> set[int]:
        """Give held messages without a UID (moved here, or renumbered) their new UID."""
        detached = {}
        for pk, message_id in (
            Message.objects.filter(folder=self.folder, uid__isnull=True, expunged_at__isnull=True)
            .exclude(message_id="")
            .values_list("pk", "message_id")
        ):
            detached.setdefault(message_id, []).append(pk)
        if not detached:
            return set()
        reattached = set()
        server_ids = self.session.message_ids(uids)
        flags = self.session.flags(uids) if server_ids else {}
        with transaction.atomic():
            for uid, message_id in server_ids.items():
                candidates = detached.get(message_id)
                if not candidates:
                    continue
                pk = candidates.pop(0)
                state = flags.get(uid)
                fields = {"uid": uid, "uidvalidity": uidvalidity}
                if state is not None:
                    fields.update(_flag_fields(state.flags), modseq=state.modseq)
                Message.objects.filter(pk=pk).update(**fields)
                reattached.add(uid)
        return reattached

    def _expunge_unmatched_detached(self) -> None:
        """After a full pass, held messages still without a UID are no longer on the server.

        Only those detached before this sync started: a UI move queued meanwhile keeps waiting.
        """
        Message.objects.filter(
            folder=self.folder, uid__isnull=True, expunged_at__isnull=True, created_at__lt=self.run.started_at
        ).exclude(pk__in=_pending_move_ids(self.folder)).update(expunged_at=timezone.now())

    def _update_flags(self, state: imap.FolderState) -> None:
        folder = self.folder
        if self.session.condstore and folder.highestmodseq is not None:
            if state.highestmodseq is not None and state.highestmodseq <= folder.highestmodseq:
                return  # nothing changed since the last sync
            changed = self.session.flags("1:*", changed_since=folder.highestmodseq)
        else:
            changed = self.session.flags("1:*")  # no CONDSTORE (or first sync): sweep
        if not changed:
            return
        local = {
            m.uid: m
            for m in self._messages(state.uidvalidity)
            .filter(uid__in=list(changed))
            .exclude(pk__in=_pending_message_ids(self.account))  # the user's change wins until written back
            .only("id", "uid", "seen", "flagged", "answered", "draft", "keywords", "modseq")
        }
        updates = []
        for uid, flag_state in changed.items():
            message = local.get(uid)
            if message is None:
                continue
            fields = _flag_fields(flag_state.flags)
            if any(getattr(message, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(message, k, v)
                message.modseq = flag_state.modseq
                updates.append(message)
        if updates:
            with transaction.atomic():
                Message.objects.bulk_update(
                    updates, ["seen", "flagged", "answered", "draft", "keywords", "modseq"], batch_size=500
                )
                self.run.messages_updated += len(updates)
                record_progress(self.run, "messages_updated")

    def _detect_expunged(self, state: imap.FolderState) -> None:
        live = self._messages(state.uidvalidity).filter(expunged_at__isnull=True)
        if live.count() == state.exists:
            return  # same count after fetching every new UID: nothing disappeared
        server = self.session.all_uids()
        gone = [uid for uid in live.values_list("uid", flat=True) if uid not in server]
        if gone:
            with transaction.atomic():
                count = live.filter(uid__in=gone).update(expunged_at=timezone.now())
                self.run.messages_expunged += count
                record_progress(self.run, "messages_expunged")


def _prefetched(produce: Callable, items: Iterable) -> Iterator:
    """Yield produce(item) for each item, computing the next one in a thread meanwhile."""
    results: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put(("ok", produce(item)))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            results.put(("error", exc))
            return
        results.put(("done", None))

    thread = threading.Thread(target=worker, name="sync-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = results.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue, then let it end
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.1)
        thread.join()


def _pending_message_ids(account: MailAccount):
    """Messages with a change not yet written to the server (a subquery)."""
    return PendingAction.objects.filter(account=account, done_at__isnull=True).values("message_id")


def _pending_move_ids(folder: Folder):
    return PendingAction.objects.filter(message__folder=folder, done_at__isnull=True).values("message_id")


def build_message(
    account: MailAccount, folder: Folder, uidvalidity: int, fetched: imap.FetchedMessage
) -> tuple[Message, list[Attachment]]:
    """A Message (and its attachments) from fetched bytes; never fails: bad MIME becomes warnings."""
    parsed = parse_message(fetched.raw)
    received = fetched.internal_date
    if received is not None and timezone.is_naive(received):
        received = timezone.make_aware(received, timezone.get_default_timezone())
    message = Message(
        owner_id=account.owner_id,
        account=account,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=fetched.uid,
        modseq=fetched.modseq,
        message_id=parsed.message_id[:995],
        in_reply_to=parsed.in_reply_to[:995],
        references=[r[:995] for r in parsed.references[:100]],
        thread_key=parsed.thread_key[:995],
        date=parsed.date,
        internal_date=received,
        sort_date=parsed.date or received or timezone.now(),
        from_address=parsed.from_address[:320],
        from_name=parsed.from_name[:300],
        to_addresses=[a[:320] for a in parsed.to_addresses[:500]],
        cc_addresses=[a[:320] for a in parsed.cc_addresses[:500]],
        size=fetched.size,
        has_attachments=any(not a.is_inline for a in parsed.attachments),
        list_id=parsed.list_id[:300],
        has_list_unsubscribe=parsed.has_list_unsubscribe,
        precedence=parsed.precedence[:20],
        auto_submitted=parsed.auto_submitted[:40],
        calendar_method=parsed.calendar_method[:20],
        has_remote_images=parsed.has_remote_images,
        parse_warnings=parsed.warnings[:50],
        subject=parsed.subject,
        text_body=parsed.text_body,
        html_body=parsed.html_body,
        raw=fetched.raw,
        **_flag_fields(fetched.flags),
    )
    attachments = [
        Attachment(
            owner_id=account.owner_id,
            message=message,
            position=position,
            content_type=part.content_type[:200],
            size=part.size,
            content_id=part.content_id[:300],
            is_inline=part.is_inline,
            filename=part.filename,
            data=part.data,
        )
        for position, part in enumerate(parsed.attachments)
    ]
    return message, attachments


def mark_retrying(run: SyncRun, seconds: int) -> None:
    """Between retries the run is queued again, with the reason, instead of looking failed."""
    run.status = SyncRun.Status.QUEUED
    run.error = f"{run.error} Retrying in {seconds} s."[:500]
    run.save(update_fields=["status", "error"])


def mark_unreachable(run: SyncRun) -> None:
    _set_account_status(run.account, MailAccount.Status.NEEDS_ATTENTION, f"Server unreachable: {run.error}")


# --- the whole account ---------------------------------------------------------------------------


def _finish(run: SyncRun, status: str, error: str = "") -> SyncRun:
    run.status, run.error, run.finished_at = status, error[:500], timezone.now()
    run.current_folder = ""
    run.save(update_fields=["status", "error", "finished_at", "current_folder"])
    return run


def _set_account_status(account: MailAccount, status: str, message: str = "", synced: bool = False) -> None:
    fields = {"status": status, "status_message": message[:300]}
    if synced:
        fields["last_sync_at"] = timezone.now()
    MailAccount.objects.filter(pk=account.pk).update(**fields)


def sync_account(
    account_id,
    run_id: int | None = None,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    progress: ProgressCallback | None = None,
) -> SyncOutcome:
    """Sync every selected folder of one account. Safe to call again at any time."""
    account = MailAccount.objects.get(pk=account_id)
    run = SyncRun.objects.filter(pk=run_id, account=account).first() if run_id else None
    if run is None:
        run = SyncRun.objects.create(account=account, trigger=trigger)
    if not account.enabled:
        return SyncOutcome(_finish(run, SyncRun.Status.SKIPPED, "The account is disabled."))
    with account_lock(account) as acquired:
        if not acquired:
            return SyncOutcome(_finish(run, SyncRun.Status.SKIPPED, "A sync of this account is already running."))
        if keyring.is_locked(account.owner_id):
            _set_account_status(account, MailAccount.Status.LOCKED, "locked: log in to resume")
            return SyncOutcome(_finish(run, SyncRun.Status.SKIPPED, "locked: log in to resume"))
        try:
            return _sync_locked(account, run, progress)
        except Exception as exc:
            # Unexpected (a database error...): record it if the database still answers, then let
            # the task fail loudly. Messages committed so far stay; the next sync resumes from them.
            with contextlib.suppress(Exception):
                _finish(run, SyncRun.Status.FAILED, f"Interrupted: {type(exc).__name__}")
            raise


def _sync_locked(account: MailAccount, run: SyncRun, progress: ProgressCallback | None) -> SyncOutcome:
    run.status, run.started_at, run.attempts = SyncRun.Status.RUNNING, timezone.now(), run.attempts + 1
    run.folders_done, run.errors, run.heartbeat_at = 0, [], run.started_at
    run.save(update_fields=["status", "started_at", "attempts", "folders_done", "errors", "heartbeat_at"])
    started = time.monotonic()
    try:
        with imap.ImapSession(server_config(account)) as session:
            folders = [f for f in refresh_folders(account, session.list_folders()) if f.sync_enabled]
            run.folders_total = len(folders)
            record_progress(run, "folders_total")
            for folder in folders:
                run.current_folder = folder.display_name
                record_progress(run, "current_folder")
                if progress:
                    progress(run)
                try:
                    FolderSync(session, folder, run, progress).run_sync()
                except imap.ImapFolderError as exc:
                    run.errors = [*run.errors, f"{folder.display_name}: {exc}"]
                run.folders_done += 1
                record_progress(run, "folders_done", "errors")
    except imap.ImapAuthError as exc:
        _set_account_status(account, MailAccount.Status.NEEDS_ATTENTION, f"Login failed: {exc}")
        return SyncOutcome(_finish(run, SyncRun.Status.FAILED, str(exc)))
    except imap.ImapConnectError as exc:
        _finish(run, SyncRun.Status.FAILED, str(exc))
        return SyncOutcome(run, retryable=True)
    log.info(
        "sync of account %s: %s new, %s updated, %s expunged, %.2fs",
        account.pk,
        run.messages_new,
        run.messages_updated,
        run.messages_expunged,
        time.monotonic() - started,
    )
    status_message = "; ".join(run.errors)[:300] if run.errors else ""
    _set_account_status(account, MailAccount.Status.OK, status_message, synced=True)
    return SyncOutcome(_finish(run, SyncRun.Status.SUCCESS))
