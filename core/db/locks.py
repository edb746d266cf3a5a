"""PostgreSQL advisory locks: how work that must not run twice at once is kept single.

One sync per account, one topic fit and one legacy conversion per user, one legacy import, one
attempt per draft being sent. Session-level locks, not transaction-level: the work commits batch
by batch while holding them. PostgreSQL drops a session's locks when its connection closes, so a
worker killed mid-run never leaves one behind, and "is it still running?" is answered exactly by
trying to take the lock. The one transaction-level lock (`advisory_xact_lock`) guards a short
check-then-insert (starting a job) and ends with the transaction that holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections


def lock_key(name: str) -> int:
    """A lock id for a name such as "topics/42": 64 bits of its SHA-256, so uses do not collide."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def try_advisory_lock(key: int, using: str = "default") -> Iterator[bool]:
    """Take the lock if it is free (never waits); yields whether it was taken, releases it at the end."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def advisory_xact_lock(key: int, using: str = "default") -> None:
    """Wait for the lock and hold it until the current transaction ends (call inside `atomic`)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
