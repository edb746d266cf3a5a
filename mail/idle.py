"""Push: new mail in seconds, by IMAP IDLE (RFC 2177), for the accounts one watcher process holds.

Polling by beat stays the fallback and the source of truth: the watcher only makes the next sync
come sooner. It never fetches or stores mail itself; on EXISTS, EXPUNGE or FETCH it sends
`signals.server_mail_changed` and mail.tasks queues a (debounced) sync, so the rules of sync.py
(incremental, idempotent, one per account) hold for push exactly as for the schedule.

One thread per connection: an idle connection costs a blocked thread and a socket, nothing at rest,
and imapclient's IDLE is blocking. `Watcher.reconcile` runs every MAILHELPER_IDLE_RELOAD_SECONDS and
starts, restarts (server settings changed) and stops connections so that accounts added, changed,
disabled or deleted are picked up within that time. Several watcher processes split the accounts by
id modulo their count (`Shard`), each bounded by MAILHELPER_IDLE_MAX_CONNECTIONS.

Keys: a connection's ServerConfig (with the password) is built from the account when it connects and
dropped as soon as the login is done; a reconnect builds it again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import close_old_connections
from django.db import connection as db_connection

from accounts import keyring

from . import imap, signals
from .models import MailAccount
from .sync import server_config

log = logging.getLogger(__name__)

CHANGES = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH"})
REISSUE_SECONDS = 25 * 60  # RFC 2177: servers may drop an IDLE after 30 minutes; re-issue well before 29
MAX_BACKOFF_SECONDS = 300


@dataclass(frozen=True)
class Shard:
    """This process's part of the accounts: those whose id modulo `count` is `index`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: the index must be in 0..count-1")

    def holds(self, account_id: uuid.UUID) -> bool:
        return account_id.int % self.count == self.index


def accounts_to_watch(shard: Shard, limit: int) -> dict[uuid.UUID, tuple]:
    """The accounts this shard holds, at most `limit`, each with what a connection depends on.

    Left out: POP3 accounts (POP3 has no IDLE: beat's schedule is their only trigger), disabled accounts,
    those that need the user's attention (a wrong password must not be
    retried by a push connection) and those whose owner's key the server cannot use (strict mode):
    beat's sync reports on them.
    """
    rows = (
        MailAccount.objects.filter(enabled=True, protocol=MailAccount.Protocol.IMAP)
        .exclude(status__in=[MailAccount.Status.NEEDS_ATTENTION, MailAccount.Status.LOCKED])
        .order_by("pk")
        .values_list("pk", "owner_id", "imap_host", "imap_port", "imap_security", "imap_username")
    )
    chosen: dict[uuid.UUID, tuple] = {}
    for pk, owner_id, *server in rows.iterator(chunk_size=2000):
        if not shard.holds(pk):
            continue
        if len(chosen) >= limit:
            log.warning("IDLE connection budget (%d) reached: other accounts are polled only", limit)
            break
        chosen[pk] = (owner_id, *server)
    return chosen


class Connection(threading.Thread):
    """One account's IDLE connection on INBOX, reconnecting with backoff until stopped."""

    def __init__(self, account_id: uuid.UUID, fingerprint: tuple, on_change: Callable[[uuid.UUID], None]):
        super().__init__(name=f"idle-{account_id}", daemon=True)
        self.account_id = account_id
        self.fingerprint = fingerprint
        self.on_change = on_change
        self.unsupported = False
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._session: imap.ImapSession | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Ask the thread to end: closing the socket wakes a blocked IDLE at once."""
        self._stopping.set()
        with self._lock:
            session = self._session
        if session is not None and session.client is not None:
            with contextlib.suppress(Exception):  # already closed is what we want
                session.client.shutdown()

    def run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                self._watch()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - a connection never dies of its errors: it retries
                if self._stopping.is_set():
                    break  # stop() closed the socket under us
                self._log_failure(exc)
                if isinstance(exc, imap.ImapAuthError):
                    backoff = MAX_BACKOFF_SECONDS  # the next sync marks the account; reconcile drops it
            finally:
                self.connected.clear()
                with self._lock:
                    session, self._session = self._session, None
                if session is not None:
                    session.close()
                db_connection.close()
            if self.unsupported:
                return
            self._stopping.wait(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not secrecy
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _log_failure(self, exc: Exception) -> None:
        # Only the type: exception texts of lower layers may carry a server's words.
        if isinstance(exc, imap.ImapError | OSError | keyring.KeyringLocked | MailAccount.DoesNotExist):
            log.info("IDLE for account %s interrupted (%s); reconnecting", self.account_id, type(exc).__name__)
        else:
            log.warning("IDLE for account %s failed (%s); reconnecting", self.account_id, type(exc).__name__)

    def _watch(self) -> None:
        account = MailAccount.objects.get(pk=self.account_id)
        config = server_config(account)
        del account
        db_connection.close()  # a thread holds no database connection while it idles
        session = imap.ImapSession(config)
        with self._lock:
            self._session = session
        if self._stopping.is_set():
            return
        session.open()
        # Logged in: the password is not needed again until a reconnect builds a new config.
        session.config = replace(config, password="")
        del config
        if "IDLE" not in session.capabilities:
            log.info("account %s: the server offers no IDLE; polled only", self.account_id)
            self.unsupported = True
            return
        session.select("INBOX", readonly=True)
        self.connected.set()
        self._idle(session.client)

    def _idle(self, client) -> None:
        while not self._stopping.is_set():
            client.idle()
            reissue_at = time.monotonic() + REISSUE_SECONDS
            while not self._stopping.is_set() and (remaining := reissue_at - time.monotonic()) > 0:
                # Blocks until the server says something (keepalives every few minutes) or the
                # re-issue time comes; stop() closes the socket to end it early.
                responses = client.idle_check(timeout=remaining)
                if _announces_change(responses):
                    self.on_change(self.account_id)
                elif not responses and reissue_at - time.monotonic() > 1:
                    # imapclient returns nothing, early, when the server closed the connection.
                    raise ConnectionResetError("the server closed the IDLE connection")
            if self._stopping.is_set():
                return
            _, responses = client.idle_done()  # what arrived since the last check is in the answer
            if _announces_change(responses):
                self.on_change(self.account_id)


def _announces_change(responses: list[tuple]) -> bool:
    return any(len(r) > 1 and r[1] in CHANGES for r in responses)


class Watcher:
    """The set of connections of one watcher process, kept in step with the database."""

    def __init__(self, shard: Shard, max_connections: int, on_change: Callable[[uuid.UUID], None] | None = None):
        self.shard = shard
        self.max_connections = max_connections
        self.on_change = on_change or announce_change
        self.connections: dict[uuid.UUID, Connection] = {}

    def reconcile(self) -> dict[str, int]:
        """Start, restart and stop connections to match the accounts; returns what changed."""
        wanted = accounts_to_watch(self.shard, self.max_connections)
        close_old_connections()
        started = stopped = 0
        for account_id, connection in list(self.connections.items()):
            gone = account_id not in wanted or wanted[account_id] != connection.fingerprint
            if gone or (not connection.is_alive() and not connection.unsupported):
                connection.stop()
                del self.connections[account_id]
                stopped += 1
        for account_id, fingerprint in wanted.items():
            if account_id in self.connections:
                continue
            connection = Connection(account_id, fingerprint, self.on_change)
            self.connections[account_id] = connection
            connection.start()
            started += 1
        return {"watching": len(self.connections), "started": started, "stopped": stopped}

    def stop(self, timeout: float = 10.0) -> None:
        for connection in self.connections.values():
            connection.stop()
        for connection in self.connections.values():
            connection.join(timeout)
        self.connections.clear()


def announce_change(account_id: uuid.UUID) -> None:
    signals.server_mail_changed.send(sender=MailAccount, account_id=str(account_id))


def reload_seconds() -> float:
    return float(settings.MAILHELPER_IDLE_RELOAD_SECONDS)
