"""The sync service: brings an account's local copy in line with its IMAP server (POP3: mail/pop3_sync.py).

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

First sync (per folder: the first one, and the resync after a UIDVALIDITY change), IMAP only:
- It takes the account's window (MailAccount.first_sync: mail since a date, the default for new
  accounts being the last 12 months; the newest N; only unread; or everything), newest UID first,
  committed batch by batch, so the newest mail is on the first page after the first batch.
  Resuming after a crash asks the server for the window again and leaves out what is stored.
- Only when it completes are UIDNEXT and UIDVALIDITY recorded: later syncs fetch every new UID
  above it, whatever the window said (a window limits the past, never new mail).
- It plans the fetch of older mail (Folder.backfill_*): since a date, the UIDs below UIDNEXT that
  arrived before that day; the newest N, the UIDs below the lowest taken. mail/backfill.py
  fetches them newest first, in batches, alongside the ordinary syncs (its UIDs never meet
  theirs; a UIDVALIDITY change cancels the plan under the folder's row lock).

A POP3 account goes through the same sync_account (lock, runs, error handling) and stores its
mail through the same store_batch (parse, encrypt with the owner's key, analysis queued, rules);
only the protocol part differs, in mail/pop3_sync.py.

Runs (SyncRun: what one sync did, shown with progress) tell the truth after a crash:
- A run goes queued -> running -> success | failed | skipped | interrupted, and a finished run never
  changes again. The one exception is mark_retrying: the task that failed its run for a network
  error a moment ago reopens it as queued for its own retry.
- Every save during a sync (each batch, each folder; record_progress) writes `heartbeat_at`.
- settle_stale_runs marks as interrupted the runs whose worker is gone (lock free, or silent longer
  than a task may live, or queued without a sign of life for STALE_QUEUED). Every trigger goes
  through it: sync_account calls it once it holds the account's lock, before it claims a run, and
  queue_run ("sync now") calls it; beat runs it every 5 minutes (task mail.settle_stale_sync_runs).
- sync_account records its work in the run it was queued with only while that run is still queued.
  A task that finds its run finished or running (redelivered after its worker died, a retry that
  came after the sweep, a duplicate) syncs anyway, since the work is repeatable, and records it as
  a new run with the task's trigger. It never exits silently: the new run shows that it happened.
- A scheduled run that changed nothing replaces the previous such run of its account, so the
  history is the runs that did something or went wrong, plus the latest quiet one. The daily prune
  (mail/retention.py) then drops runs older than MAILHELPER_RETENTION_SYNC_RUNS_DAYS, keeping each
  account's newest run and the failures of the last 30 days.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts import keyring
from accounts.fields import Sealed, encrypted_fields, seal_fields, sealed_label_of
from core import stored_text
from core.db.copy import copy_insert
from core.db.locks import try_advisory_lock
from core.jobs import stale_after
from core.stored_text import Text, message_of

from . import imap, oauth, pop3, signals
from .models import Attachment, Folder, MailAccount, Message, PendingAction, SyncRun
from .parsing import parse_message
from .search_tokens import SearchKey
from .sync_pool import CHUNK, Job, ParserPool, Sealing, attachment_values, message_values, parser_pool
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
    """How to log in to the account's incoming server; an OAuth2 account's token refreshed first if due."""
    return imap.ServerConfig(
        host=account.imap_host,
        port=account.imap_port,
        security=account.imap_security,
        username=account.imap_username,
        password=account.imap_password,
        timeout=settings.MAILHELPER_IMAP_TIMEOUT,
        oauth_token=_oauth_token(account) if account.uses_oauth else "",
    )


def _oauth_token(account: MailAccount) -> str:
    """The token, its failures in the IMAP error types every caller already handles."""
    try:
        return oauth.access_token(account)
    except oauth.SignInAgain as exc:
        raise imap.ImapAuthError(stored_text.message_of(exc)) from None
    except oauth.ProviderUnavailable as exc:
        raise imap.ImapConnectError("network", stored_text.message_of(exc)) from None


def check_connection(account: MailAccount) -> imap.ConnectionReport | pop3.ConnectionReport:
    """ "Test connection" with the account's stored settings, in its protocol."""
    if account.is_pop3:
        return pop3.check_connection(server_config(account))
    return imap.check_connection(server_config(account))


def _lock_key(account: MailAccount | uuid.UUID) -> int:
    pk = account if isinstance(account, uuid.UUID) else account.pk
    return int.from_bytes(pk.bytes[:8], "big", signed=True)


def account_lock(account: MailAccount) -> AbstractContextManager[bool]:
    """One sync per account (see core.db.locks); yields whether this one may run."""
    return try_advisory_lock(_lock_key(account))


def is_sync_running(account: MailAccount) -> bool:
    """True while another connection holds the account's lock."""
    with account_lock(account) as acquired:
        return not acquired


ACTIVE = (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING)
#: A queued run is presumed lost after this long without a sign of life: longer than a worker's
#: queue normally makes it wait, and than the longest retry countdown (tasks._backoff, 5 retries: 8 min).
STALE_QUEUED = timedelta(minutes=15)
INTERRUPTED = gettext_noop(
    "Interrupted: the worker stopped before the sync finished. The next sync picks up where it left off."
)
LOST = gettext_noop("Interrupted: no worker started this sync in time. The next sync covers it.")


def queue_run(account: MailAccount, trigger: str) -> tuple[SyncRun, bool]:
    """The run to show for a "sync now": an active one if there is one, else a new queued run.

    Stale runs are settled first, so a run left behind by a dead worker never blocks a "sync now".
    """
    settle_stale_runs(account)
    active = account.sync_runs.filter(status__in=ACTIVE).first()
    if active is not None:
        return active, False
    return SyncRun.objects.create(account=account, trigger=trigger), True


def settle_stale_runs(account: MailAccount | None = None, now: datetime | None = None) -> int:
    """Mark as interrupted the runs (all, or one account's) whose worker is gone; returns how many.

    1. Running while nobody holds the account's lock: a sync holds the lock from before it claims
       its run until after it finishes it, and PostgreSQL drops the lock with the connection of a
       killed worker. We take the lock ourselves while we settle, so no sync can claim or finish a
       run of that account in between. (Session locks stack: the sync service, which holds the
       lock already when it calls this, gets it again.)
    2. Running with no heartbeat for longer than a task may live (core.jobs.stale_after(): the
       hard time limit plus a grace): the worker's host vanished and PostgreSQL has not yet noticed
       that its connection is dead, so the lock still looks held.
    3. Queued with no sign of life for STALE_QUEUED: its message was lost, or waits in the
       unacked set of a dead worker until the broker's visibility timeout (docs/notes/sync-runs.md).
       If that task comes after all, it finds its run finished and records a run of its own.
    Every UPDATE re-checks the status, so a run that finished meanwhile keeps its verdict.
    """
    now = now or timezone.now()
    runs = SyncRun.objects.filter(status__in=ACTIVE)
    if account is not None:
        runs = runs.filter(account=account)
    # One read tells which of the UPDATEs below can change anything: a sync finds only its own fresh
    # queued run nearly always, and this runs at the start of every sync (#15, docs/notes/fanout.md).
    active = list(runs.values_list("account_id", "status", "heartbeat_at"))
    running = {account_id for account_id, status, _ in active if status == SyncRun.Status.RUNNING}
    settled = 0
    for account_id in running:
        with try_advisory_lock(_lock_key(account_id)) as acquired:
            if acquired:
                settled += _interrupt(runs.filter(account_id=account_id, status=SyncRun.Status.RUNNING), now)
    for status, limit, error in (
        (SyncRun.Status.RUNNING, now - stale_after(), INTERRUPTED),
        (SyncRun.Status.QUEUED, now - STALE_QUEUED, LOST),
    ):
        if any(s == status and heartbeat is not None and heartbeat < limit for _, s, heartbeat in active):
            settled += _interrupt(runs.filter(status=status, heartbeat_at__lt=limit), now, error)
    if settled:
        log.warning("sync runs settled as interrupted: %s", settled)
    return settled


def _interrupt(runs, now: datetime, error: str = INTERRUPTED) -> int:
    return runs.update(
        status=SyncRun.Status.INTERRUPTED,
        finished_at=now,
        current_folder="",
        error=error,
        error_kind=SyncRun.ErrorKind.INTERRUPTED,
    )


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
    created = False
    for sf in server_folders:
        if not sf.selectable:
            continue
        seen.add(sf.name)
        folder = existing.get(sf.name)
        if folder is None:
            created = True
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
    if not created and not gone:  # the list as read, in its order: no second query for the usual sync
        return [f for f in existing.values() if f.exists_on_server]
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


# --- storing new messages (IMAP and POP3 alike) ------------------------------------------------------


def size_batches(keys: list, sizes: dict, batch: int, max_bytes: int = _BATCH_BYTES) -> list[list]:
    """`keys` in batches of at most `batch` messages and about `max_bytes`, so a folder of 25 MB
    messages does not hold gigabytes in memory."""
    batches: list[list] = [[]]
    batch_bytes = 0
    for key in keys:
        size = sizes.get(key, 0)
        if batches[-1] and (len(batches[-1]) >= batch or batch_bytes + size > max_bytes):
            batches.append([])
            batch_bytes = 0
        batches[-1].append(key)
        batch_bytes += size
    return [b for b in batches if b]


@dataclass
class Sealer:
    """Makes built messages storable: the thread key keyed, content compressed and encrypted.

    Holds the owner's data key, fetched once by the thread that has database access, so that the
    helper thread that fetches and parses can seal too (in parallel with the writes).
    """

    dek: bytes
    search_key: SearchKey

    @classmethod
    def for_owner(cls, owner_id: int) -> Sealer:
        dek = keyring.dek_for(owner_id)
        return cls(dek, SearchKey.from_data_key(dek))

    def seal(self, message: Message, parts: list[Attachment]) -> tuple[Message, list[Attachment]]:
        message.thread_key = storable_thread_key(message.thread_key, self.search_key)
        seal_fields(message, self.dek)
        for part in parts:
            seal_fields(part, self.dek)
        return message, parts


@dataclass
class StoredBatch:
    """One batch of sealed messages on its way into the database.

    `also` runs inside the batch's transaction after the messages are inserted: the POP3 sync
    writes its UIDL state there, so the state and the messages are committed together or not at all.
    """

    messages: list[Message] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    size: int = 0
    also: Callable[[], None] | None = None

    def add(self, message: Message, parts: list[Attachment]) -> None:
        self.messages.append(message)
        self.attachments.extend(parts)


def store_batch(run: SyncRun | None, batch: StoredBatch, progress: ProgressCallback | None = None) -> None:
    """Insert one batch in one transaction: messages, attachments, the caller's state, analysis queued, counts.

    The one path by which synced mail enters the database, for IMAP and POP3 alike, and for the
    background fetch of older mail (mail/backfill.py: no run, its state goes in `also`, which may
    raise to roll the batch back).
    """
    with transaction.atomic():
        copy_insert(Message, batch.messages)
        copy_insert(Attachment, batch.attachments)
        if batch.also is not None:
            batch.also()
        # Receivers write in this transaction (analysis queues each message): a lost task delays, never skips.
        signals.messages_stored.send(sender=Message, messages=batch.messages)
        if run is None:
            return
        run.messages_new += len(batch.messages)
        run.bytes_fetched += batch.size
        record_progress(run, "messages_new", "bytes_fetched")
    if progress:
        progress(run)


BACKFILL_FIELDS = [
    "backfill_uidvalidity",
    "backfill_below_uid",
    "backfill_before",
    "backfill_total",
    "backfill_done",
    "backfill_reached",
]


@dataclass(frozen=True)
class Window:
    """What the first sync of a folder takes, from the account's settings (decided here, done by FolderSync)."""

    mode: str
    since: date | None = None
    newest: int = 0
    backfill: bool = False

    @classmethod
    def of(cls, account: MailAccount) -> Window:
        mode = account.first_sync
        if mode == MailAccount.FirstSync.SINCE and account.first_sync_since is None:
            mode = MailAccount.FirstSync.ALL  # no date given: nothing to leave out
        if mode == MailAccount.FirstSync.NEWEST and not account.first_sync_newest:
            mode = MailAccount.FirstSync.ALL
        return cls(mode, account.first_sync_since, account.first_sync_newest or 0, account.backfill_older)

    def uids(self, session: imap.ImapSession) -> list[int]:
        """The selected folder's UIDs this window takes, newest (highest UID) first."""
        if self.mode == MailAccount.FirstSync.SINCE:
            found = session.search_uids(since=self.since)
        elif self.mode == MailAccount.FirstSync.UNREAD:
            found = session.search_uids(unseen=True)
        else:
            found = session.uids_from(1)
        found = sorted(found, reverse=True)
        return found[: self.newest] if self.mode == MailAccount.FirstSync.NEWEST else found


class FolderSync:
    """Sync of one folder within an open session; counts go to the run as it goes."""

    def __init__(self, session: imap.ImapSession, folder: Folder, run: SyncRun, progress: ProgressCallback | None):
        self.session, self.folder, self.run, self.progress = session, folder, run, progress
        self.account = folder.account
        self.batch = settings.MAILHELPER_SYNC_BATCH
        # Set by a first sync that fetched every message we hold of the folder in this session:
        # their flags are as of this session's SELECT or later (see _update_flags).
        self._fetched_all_since: int | None = None

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
            # The UIDs a running background fetch holds mean nothing now: its batch is refused at
            # commit (it checks this under the folder's row lock) and the first sync plans anew.
            Folder.objects.filter(pk=self.folder.pk).update(backfill_uidvalidity=None, backfill_below_uid=None)
            self.folder.backfill_uidvalidity = self.folder.backfill_below_uid = None

    def _fetch_new(self, state: imap.FolderState) -> None:
        if not self._first_sync_done(state):
            self._fetch_first(state)
            return
        # Every UID below the uidnext of the last completed sync was handled then, even if its
        # message has since been moved out locally (and is still here on the server until the
        # write-back runs); above it, what we stored before a crash tells where to resume.
        # (_first_sync_done says the folder's uidnext is of this UIDVALIDITY.) When the server's
        # UIDNEXT has not moved past it, the highest stored UID cannot change the verdict below.
        first_new = self.folder.uidnext
        if state.uidnext is None or state.uidnext > first_new:
            stored_max = self._messages(state.uidvalidity).aggregate(m=Max("uid"))["m"] or 0
            first_new = max(first_new, stored_max + 1)
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

    def _first_sync_done(self, state: imap.FolderState) -> bool:
        """A completed sync of this folder under the server's current UIDVALIDITY is recorded."""
        return self.folder.uidvalidity == state.uidvalidity and bool(self.folder.uidnext)

    def _stored_uids(self, uidvalidity: int, below: int | None = None) -> set[int]:
        stored = self._messages(uidvalidity).filter(uid__isnull=False)
        if below is not None:
            stored = stored.filter(uid__lt=below)
        return set(stored.values_list("uid", flat=True))

    def _fetch_first(self, state: imap.FolderState) -> None:
        """The folder's first sync (or its resync after a UIDVALIDITY change): the account's window,
        newest first, committed batch by batch; then the background fetch of older mail is planned.

        Resumable: the window is asked of the server again and what is stored already is left out,
        so a rerun after a crash fetches exactly the rest. Messages we held under the old UIDs are
        re-attached by Message-ID over the whole folder first, also those outside the window.
        """
        window = Window.of(self.account)
        had_detached = self._has_detached()
        if had_detached:
            candidates = sorted(set(self.session.uids_from(1)) - self._stored_uids(state.uidvalidity))
            for start in range(0, len(candidates), self.batch):
                self._reattach(state.uidvalidity, candidates[start : start + self.batch])
        taken = window.uids(self.session)  # newest first
        stored = self._stored_uids(state.uidvalidity)
        wanted = [uid for uid in taken if uid not in stored]
        if not stored and not had_detached and self.session.condstore:
            self._fetched_all_since = state.highestmodseq
        if wanted:
            self._fetch_and_store(state.uidvalidity, wanted)
        self._expunge_unmatched_detached()
        self._plan_backfill(window, state, taken)

    def _plan_backfill(self, window: Window, state: imap.FolderState, taken: list[int]) -> None:
        """Record what older mail the background fetch (mail/backfill.py) is to bring, if any.

        Since a date: every UID below UIDNEXT that arrived before that day (the complement of
        the window on the server's own criterion, so the two never overlap). The newest N: every
        UID below the lowest one taken. Nothing for the whole mailbox, unread only, or when off.
        """
        folder = self.folder
        below, before = None, None
        if window.backfill and window.mode == MailAccount.FirstSync.SINCE:
            below, before = state.uidnext or (max(taken, default=0) + 1), window.since
        elif window.backfill and window.mode == MailAccount.FirstSync.NEWEST and len(taken) >= window.newest:
            below = min(taken, default=None)
        total = 0
        if below is not None:
            pending = set(self.session.search_uids(before=before, below=below))
            total = len(pending - self._stored_uids(state.uidvalidity, below))
        folder.backfill_uidvalidity = state.uidvalidity if total else None
        folder.backfill_below_uid = below if total else None
        folder.backfill_before = before if total else None
        folder.backfill_total, folder.backfill_done, folder.backfill_reached = total, 0, None
        folder.save(update_fields=BACKFILL_FIELDS)

    def _has_detached(self) -> bool:
        return Message.objects.filter(folder=self.folder, uid__isnull=True, expunged_at__isnull=True).exists()

    def _batches(self, uids: list[int]) -> list[list[int]]:
        return size_batches(uids, self.session.sizes(uids), self.batch)

    def _fetch_and_store(self, uidvalidity: int, uids: list[int]) -> None:
        """Fetch, parse and encrypt the next batch in a helper thread while this one writes.

        The helper thread only talks IMAP, parses and encrypts (no database); this thread only
        writes, so network, CPU and PostgreSQL overlap. It holds one batch ahead at most. For a
        large fetch the parsing and encryption go to processes (mail/sync_pool.py), which the
        helper thread feeds one batch ahead of the one it waits for.
        """

        sealer = Sealer.for_owner(self.account.owner_id)  # the key fetched here: the helper thread has no DB access
        batches = self._batches(uids)

        def build(batch: list[int]) -> StoredBatch:
            stored = StoredBatch()
            for fetched in self.session.fetch_messages(batch):
                stored.add(*sealer.seal(*build_message(self.account, self.folder, uidvalidity, fetched)))
                stored.size += len(fetched.raw)
            return stored

        processes, at_least = settings.MAILHELPER_SYNC_PROCESSES, settings.MAILHELPER_SYNC_PROCESSES_FROM
        with parser_pool(processes, len(uids), at_least) as pool:
            if pool is None:
                stream = prefetched(build, batches)
            else:
                log.info("folder %s: %s messages parsed in %s processes", self.folder.pk, len(uids), pool.processes)
                stream = prefetched(_same, self._built_in(pool, sealer, uidvalidity, batches))
            for stored in stream:
                store_batch(self.run, stored, self.progress)

    def _built_in(
        self, pool: ParserPool, sealer: Sealer, uidvalidity: int, batches: list[list[int]]
    ) -> Iterator[StoredBatch]:
        """The batches parsed and sealed by the pool, in order; runs in the helper thread.

        Each batch is fetched and handed to the processes in chunks before the previous batch's
        results are awaited, so the processes parse one batch while the next one is read from the
        server."""
        owner_id = self.account.owner_id
        sealing = (
            Sealing(sealed_label_of(Message), encrypted_fields(Message)),
            Sealing(sealed_label_of(Attachment), encrypted_fields(Attachment)),
        )
        pending: deque = deque()
        for batch in batches:
            fetched = list(self.session.fetch_messages(batch))
            jobs = [
                pool.submit(Job(sealer.dek, owner_id, *sealing, tuple(f.raw for f in fetched[i : i + CHUNK])))
                for i in range(0, len(fetched), CHUNK)
            ]
            pending.append((fetched, jobs))
            if len(pending) > 1:
                yield self._stored(pool, uidvalidity, *pending.popleft())
        while pending:
            yield self._stored(pool, uidvalidity, *pending.popleft())

    def _stored(self, pool: ParserPool, uidvalidity: int, fetched: list, jobs: list) -> StoredBatch:
        """One batch's messages from the pool's results, as new_message and Sealer.seal make them."""
        stored = StoredBatch()
        built = [b for job in jobs for b in pool.result(job)]
        message_fields = [name for name, _, _ in encrypted_fields(Message)]
        attachment_fields = [name for name, _, _ in encrypted_fields(Attachment)]
        for item, done in zip(fetched, built, strict=True):
            _as_sealed(done.values, message_fields)
            for _, part in done.attachments:
                _as_sealed(part, attachment_fields)
            message, parts = _assemble(
                self.account,
                self.folder,
                done.values,
                [part for _, part in done.attachments],
                uidvalidity=uidvalidity,
                uid=item.uid,
                modseq=item.modseq,
                flags=item.flags,
                size=item.size,
                internal_date=item.internal_date,
                pk=done.pk,
                part_pks=[pk for pk, _ in done.attachments],
            )
            stored.add(message, parts)
            stored.size += len(item.raw)
        return stored

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
        They count as removed on the server, like the UIDs _detect_expunged finds gone.
        """
        with transaction.atomic():
            count = (
                Message.objects.filter(
                    folder=self.folder, uid__isnull=True, expunged_at__isnull=True, created_at__lt=self.run.started_at
                )
                .exclude(pk__in=_pending_move_ids(self.folder))
                .update(expunged_at=timezone.now())
            )
            if count:
                self.run.messages_expunged += count
                record_progress(self.run, "messages_expunged")

    def _update_flags(self, state: imap.FolderState) -> None:
        """Flags changed on the server: CHANGEDSINCE a known modseq with CONDSTORE, else a sweep.

        The known modseq is the last completed sync's, or, for a first sync that fetched every
        message we hold of the folder in this session, the HIGHESTMODSEQ of this session's SELECT:
        each FETCH came after it and carried the flags of its moment, and any change after the
        SELECT has a higher modseq. That saves the first sync a sweep over every message it just
        stored. A resumed first sync (messages stored by an earlier session) still sweeps.
        """
        folder = self.folder
        since = folder.highestmodseq if folder.highestmodseq is not None else self._fetched_all_since
        if self.session.condstore and since is not None:
            if state.highestmodseq is not None and state.highestmodseq <= since:
                return  # nothing changed since then
            changed = self.session.flags("1:*", changed_since=since)
        else:
            changed = self.session.flags("1:*")  # no CONDSTORE (or first sync): sweep
        if not changed:
            return
        local = {
            m.uid: m
            for m in self._messages(state.uidvalidity)
            .filter(uid__in=list(changed))
            .exclude(pk__in=_pending_message_ids(self.account))  # the user's change wins until written back
            .only(
                "id",
                "owner_id",
                "account_id",
                "folder_id",
                "uidvalidity",
                "uid",
                "seen",
                "flagged",
                "answered",
                "draft",
                "keywords",
                "modseq",
            )
        }
        updates, keyword_changes = [], []
        for uid, flag_state in changed.items():
            message = local.get(uid)
            if message is None:
                continue
            fields = _flag_fields(flag_state.flags)
            if any(getattr(message, k) != v for k, v in fields.items()):
                if message.keywords != fields["keywords"]:
                    keyword_changes.append((message, message.keywords, fields["keywords"]))
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
                if keyword_changes:
                    for message, _, _ in keyword_changes:
                        message.account, message.folder = self.account, folder
                    signals.keywords_changed.send(
                        sender=Message, owner_id=self.account.owner_id, changes=keyword_changes
                    )

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


def _same(value):
    return value


def _as_sealed(values: dict, names: list[str]) -> None:
    """Mark the sealed bytes a parser process returned as ciphertext (accounts.fields.Sealed)."""
    for name in names:
        if values.get(name) is not None:
            values[name] = Sealed(values[name])


def prefetched(produce: Callable, items: Iterable) -> Iterator:
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
    # NULL message ids (the Sent copy of a new message) must stay out: NOT IN (..., NULL) is never true.
    return PendingAction.objects.filter(account=account, done_at__isnull=True, message__isnull=False).values(
        "message_id"
    )


def _pending_move_ids(folder: Folder):
    return PendingAction.objects.filter(message__folder=folder, done_at__isnull=True).values("message_id")


def build_message(
    account: MailAccount, folder: Folder, uidvalidity: int, fetched: imap.FetchedMessage
) -> tuple[Message, list[Attachment]]:
    """A Message (and its attachments) from an IMAP fetch; never fails: bad MIME becomes warnings."""
    return new_message(
        account,
        folder,
        fetched.raw,
        uidvalidity=uidvalidity,
        uid=fetched.uid,
        modseq=fetched.modseq,
        flags=fetched.flags,
        size=fetched.size,
        internal_date=fetched.internal_date,
    )


def new_message(
    account: MailAccount,
    folder: Folder,
    raw: bytes,
    *,
    uidvalidity: int | None = None,
    uid: int | None = None,
    modseq: int | None = None,
    flags: tuple[str, ...] = (),
    size: int | None = None,
    internal_date: datetime | None = None,
) -> tuple[Message, list[Attachment]]:
    """A Message (and its attachments) from a message's bytes and what the server said about it.

    Shared by both protocols; POP3 has no UID, flags or arrival time (uid stays NULL, the date
    falls back to the Date header, then to now). Never fails: bad MIME becomes warnings.
    """
    parsed = parse_message(raw)
    values = message_values(parsed, raw)
    return _assemble(
        account,
        folder,
        values,
        attachment_values(parsed),
        uidvalidity=uidvalidity,
        uid=uid,
        modseq=modseq,
        flags=flags,
        size=len(raw) if size is None else size,
        internal_date=internal_date,
    )


def _assemble(
    account: MailAccount,
    folder: Folder,
    values: dict,
    parts: list[dict],
    *,
    uidvalidity: int | None,
    uid: int | None,
    modseq: int | None,
    flags: tuple[str, ...],
    size: int,
    internal_date: datetime | None,
    pk: uuid.UUID | None = None,
    part_pks: list[uuid.UUID] | None = None,
) -> tuple[Message, list[Attachment]]:
    """The Message and Attachments from the parsed values (mail.sync_pool) and what the server said.

    Both paths build them here: new_message with plaintext values (sealed later by a Sealer), the
    parser processes with sealed values and the primary keys they were sealed for."""
    received = internal_date
    if received is not None and timezone.is_naive(received):
        received = timezone.make_aware(received, timezone.get_default_timezone())
    if pk is not None:
        values["id"] = pk
    message = Message(
        owner_id=account.owner_id,
        account=account,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        modseq=modseq,
        internal_date=received,
        sort_date=values["date"] or received or timezone.now(),
        size=size,
        **values,
        **_flag_fields(flags),
    )
    attachments = []
    for position, part in enumerate(parts):
        if part_pks is not None:
            part["id"] = part_pks[position]
        attachments.append(Attachment(owner_id=account.owner_id, message=message, **part))
    return message, attachments


#: During a long sync, analysis is told of new mail after the first batch and then every this many messages.
ANNOUNCE_EVERY = 1000


def announce_new_mail(account_id, every: int = ANNOUNCE_EVERY) -> ProgressCallback:
    """A progress callback for the sync task: signals.new_mail_synced once the first batch is
    committed and then every `every` new messages, so the newest mail of a long first sync is
    analysed (and its first page usable) while older mail is still being fetched."""
    announced = [0]

    def progress(run: SyncRun) -> None:
        if run.messages_new and (not announced[0] or run.messages_new - announced[0] >= every):
            announced[0] = run.messages_new
            signals.new_mail_synced.send(sender=MailAccount, account_id=str(account_id))

    return progress


def mark_retrying(run: SyncRun, seconds: int) -> None:
    """Between retries the run is queued again, with the reason, instead of looking failed.

    The one reopening of a finished run, and only by the task that failed it a moment ago for a
    network error (retryable), for its own retry: no other task can hold this run.
    """
    now = timezone.now()
    run.status, run.finished_at, run.heartbeat_at = SyncRun.Status.QUEUED, None, now
    retrying = Text(gettext_noop("%(error)s Retrying in %(seconds)s s."), error=_text(run.error), seconds=seconds)
    run.error = stored_text.dump(retrying, 500)
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.FAILED).update(
        status=run.status, finished_at=None, heartbeat_at=now, error=run.error
    )


def mark_unreachable(run: SyncRun) -> None:
    unreachable = Text(gettext_noop("Server unreachable: %(error)s"), error=_text(run.error))
    _set_account_status(run.account, MailAccount.Status.NEEDS_ATTENTION, unreachable)


# --- the whole account ---------------------------------------------------------------------------


def _text(stored: str) -> Text | str:
    """A run's stored error again as a Text (or the plain sentence of an old row), to quote in another."""
    loaded = stored_text.load(stored)
    return loaded if isinstance(loaded, Text) else stored


def _finish(run: SyncRun, status: str, error: Text | str = "", kind: str = SyncRun.ErrorKind.NONE) -> SyncRun:
    """Close the run, unless it is closed already (settled as interrupted): a finished run never changes.

    `error` is stored as a core.stored_text: the run's page shows it in the viewer's language."""
    now = timezone.now()
    error = stored_text.dump(error, 500)
    closed = SyncRun.objects.filter(pk=run.pk, status__in=ACTIVE).update(
        status=status, error=error[:500], error_kind=kind, finished_at=now, heartbeat_at=now, current_folder=""
    )
    if closed:
        run.status, run.error, run.error_kind = status, error[:500], kind
        run.finished_at, run.heartbeat_at, run.current_folder = now, now, ""
        _forget_quiet_runs_before(run)
    else:
        run.refresh_from_db()
    return run


ALREADY_RUNNING = gettext_noop("A sync of this account is already running.")
LOCKED = gettext_noop("locked: log in to resume")

#: Scheduled or pushed runs that changed nothing (288 a day per account at the default interval).
QUIET_TRIGGERS = (SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.PUSH)
QUIET_STATUSES = (SyncRun.Status.SUCCESS, SyncRun.Status.SKIPPED)
QUIET = Q(
    trigger__in=QUIET_TRIGGERS,
    status__in=QUIET_STATUSES,
    messages_new=0,
    messages_updated=0,
    messages_expunged=0,
    errors=[],
)


def is_quiet(run: SyncRun) -> bool:
    """QUIET, for a run in memory: a finished sync knows it without asking the database."""
    changed = run.messages_new or run.messages_updated or run.messages_expunged or run.errors
    return run.trigger in QUIET_TRIGGERS and run.status in QUIET_STATUSES and not changed


def _forget_quiet_runs_before(run: SyncRun) -> None:
    """A quiet run replaces the account's earlier quiet runs: the history keeps every run that
    changed something, failed, was interrupted or was asked for, plus the latest quiet one.

    "Last checked" needs no run: MailAccount.last_sync_at is set by every successful sync. Only
    runs finished before this one go, so two quiet runs finishing at once still leave the later.
    """
    if is_quiet(run):
        SyncRun.objects.filter(QUIET, account_id=run.account_id, finished_at__lt=run.finished_at).delete()


def _set_account_status(
    account: MailAccount, status: str, message: Text | str | list[Text | str] = "", synced: bool = False
) -> None:
    """The message is stored as a core.stored_text, shown in the account owner's language."""
    fields = {"status": status, "status_message": stored_text.dump(message, 300)}
    if synced:
        fields["last_sync_at"] = timezone.now()
    MailAccount.objects.filter(pk=account.pk).update(**fields)


def sync_account(
    account_id,
    run_id: int | None = None,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    progress: ProgressCallback | None = None,
) -> SyncOutcome:
    """Sync every selected folder of one account. Safe to call again at any time.

    `run_id` is the queued run to record the sync in ("sync now" shows it); if that run is no
    longer queued, the sync records a run of its own (see the module docstring, "Runs").
    """
    account = MailAccount.objects.get(pk=account_id)
    with account_lock(account) as acquired:
        if acquired:
            # This sync holds the account's lock, so no other sync of the account is alive: every
            # trigger (sync now, beat, the watcher) settles what a dead worker left behind here.
            settle_stale_runs(account)
        if not account.enabled:
            skipped = gettext_noop("The account is disabled.")
        elif not acquired:
            skipped = ALREADY_RUNNING
        elif keyring.is_locked(account.owner_id):
            skipped = LOCKED
            _set_account_status(account, MailAccount.Status.LOCKED, LOCKED)
        else:
            skipped = None
        if skipped is not None:
            return SyncOutcome(_finish(_queued_run(account, run_id, trigger), SyncRun.Status.SKIPPED, skipped))
        run = _running_run(account, run_id, trigger)
        try:
            return _sync_locked(account, run, progress)
        except Exception as exc:
            # Unexpected (a database error...): record it if the database still answers, then let
            # the task fail loudly. Messages committed so far stay; the next sync resumes from them.
            with contextlib.suppress(Exception):
                error = Text(gettext_noop("Interrupted: %(error)s"), error=type(exc).__name__)
                _finish(run, SyncRun.Status.FAILED, error, SyncRun.ErrorKind.INTERNAL)
            raise


def _queued_run(account: MailAccount, run_id: int | None, trigger: str) -> SyncRun:
    """The run this sync was queued with while it is still queued, else a new queued run.

    A run that is no longer queued belongs to someone else or to the past: finished (this is a
    redelivered task, or a retry that came after the sweep gave up on its run), or running (a
    duplicate delivery while the sync holding the lock works on it). It is left as it is.
    """
    return _given_run(account, run_id) or SyncRun.objects.create(account=account, trigger=trigger)


def _given_run(account: MailAccount, run_id: int | None) -> SyncRun | None:
    """The queued run the task was given, while it is still queued."""
    if run_id is None:
        return None
    run = SyncRun.objects.filter(pk=run_id, account=account, status=SyncRun.Status.QUEUED).first()
    if run is None:
        log.info("sync of account %s: run %s is no longer queued, recording a new run", account.pk, run_id)
    return run


def _running_run(account: MailAccount, run_id: int | None, trigger: str) -> SyncRun:
    """The run this sync records its work in, claimed (queued -> running) under the account's lock.

    The queued run it was given, unless that is no longer queued (see _queued_run) or the sweep
    settles it between our read and our claim (it had waited STALE_QUEUED): then a run of its own,
    created running, since this sync holds the lock already. The fields are set here as the UPDATE
    sets them, so no second read is needed (#15: every query counts 10,000 times per interval).
    """
    now = timezone.now()
    run = _given_run(account, run_id)
    if run is not None:
        running = {
            "status": SyncRun.Status.RUNNING,
            "started_at": now,
            "heartbeat_at": now,
            "attempts": run.attempts + 1,  # only this, under the lock, changes a run's attempts
            "folders_done": 0,
            "errors": [],
        }
        if SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.QUEUED).update(**running) == 1:
            for field, value in running.items():
                setattr(run, field, value)
            return run
    return SyncRun.objects.create(
        account=account, trigger=trigger, status=SyncRun.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=1
    )


def _sync_imap(account: MailAccount, run: SyncRun, progress: ProgressCallback | None) -> None:
    with imap.ImapSession(server_config(account)) as session:
        folders = [f for f in refresh_folders(account, session.list_folders()) if f.sync_enabled]
        run.folders_total = len(folders)
        unsaved = ["folders_total"]  # saved with the first folder's name: one write less per sync
        for folder in folders:
            run.current_folder = folder.display_name
            record_progress(run, *unsaved, "current_folder")
            unsaved = []
            if progress:
                progress(run)
            try:
                FolderSync(session, folder, run, progress).run_sync()
            except imap.ImapFolderError as exc:
                error = Text(gettext_noop("%(folder)s: %(error)s"), folder=folder.display_name, error=message_of(exc))
                run.errors = [*run.errors, stored_text.dump(error, 500)]
            run.folders_done += 1
            record_progress(run, "folders_done", "errors")
        if unsaved:
            record_progress(run, *unsaved)


def _sync_locked(account: MailAccount, run: SyncRun, progress: ProgressCallback | None) -> SyncOutcome:
    """The account's protocol does the work; login and network failures are recorded alike for both."""
    from . import pop3_sync  # imports this module

    started = time.monotonic()
    try:
        if account.is_pop3:
            pop3_sync.sync_inbox(account, run, progress)
        else:
            _sync_imap(account, run, progress)
    except (imap.ImapAuthError, pop3.Pop3AuthError) as exc:
        failed = Text(gettext_noop("Login failed: %(error)s"), error=message_of(exc))
        _set_account_status(account, MailAccount.Status.NEEDS_ATTENTION, failed)
        return SyncOutcome(_finish(run, SyncRun.Status.FAILED, message_of(exc), SyncRun.ErrorKind.LOGIN))
    except (imap.ImapConnectError, pop3.Pop3ConnectError) as exc:
        _finish(run, SyncRun.Status.FAILED, message_of(exc), SyncRun.ErrorKind.NETWORK)
        return SyncOutcome(run, retryable=True)
    log.info(
        "sync of account %s: %s new, %s updated, %s expunged, %.2fs",
        account.pk,
        run.messages_new,
        run.messages_updated,
        run.messages_expunged,
        time.monotonic() - started,
    )
    status_message = [_text(error) for error in run.errors]  # shown joined by "; "
    _set_account_status(account, MailAccount.Status.OK, status_message, synced=True)
    return SyncOutcome(_finish(run, SyncRun.Status.SUCCESS))
