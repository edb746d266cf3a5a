"""`manage.py backfill_threads`: fill Message.thread_key from the stored raw headers, and the keyed
subject hash that joins header-less replies ("Re: Budget" without In-Reply-To) to their conversation.

For messages stored before threading existed (or imported without it). Resumable: only messages
with an empty key or without a subject hash are selected unless --all, and each chunk is saved (and
its subjects relinked) as it goes, so a rerun after an interruption continues and a rerun after
completion finds nothing. Strict-mode users who are logged out are skipped (their mail cannot be
decrypted); a later run picks them up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q

from accounts import keyring
from mail.management.selection import add_selection_arguments, owner_id_from
from mail.models import Message
from mail.parsing import parse_message
from mail.search import search_key_for
from mail.threading_keys import NO_SUBJECT, relink_subjects, storable_thread_key, subject_hash

CHUNK = 200


def backfill_threads(
    owner_id: int | None = None,
    since: date | None = None,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Recompute thread keys and subject hashes; returns (updated, skipped). Only ids, keys and hashes are
    touched, never logged. Messages without a raw source (imported) get their subject hash only."""
    qs = Message.objects.all()
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if since:
        qs = qs.filter(sort_date__date__gte=since)
    if not everything:
        qs = qs.filter(Q(thread_key="", raw__isnull=False) | Q(subject_hash__isnull=True))
    locked = [uid for uid in set(qs.values_list("owner_id", flat=True)) if keyring.is_locked(uid)]
    qs = qs.exclude(owner_id__in=locked).only("id", "owner_id", "thread_key", "subject_hash", "raw", "subject")
    qs = qs.order_by("pk")
    total = qs.count()
    updated = processed = 0
    last_pk = None
    while True:
        chunk = list((qs if last_pk is None else qs.filter(pk__gt=last_pk))[:CHUNK])
        if not chunk:
            break
        changed = []
        hashes: dict[int, set[int]] = {}
        for message in chunk:
            search_key = search_key_for(message.owner_id)
            dirty = False
            if message.raw is not None and (everything or not message.thread_key):
                parsed_key = parse_message(bytes(message.raw)).thread_key
                key = storable_thread_key(parsed_key, search_key)[:995]  # never a subject
                if key != message.thread_key:
                    message.thread_key, dirty = key, True
            hashed = subject_hash(message.subject, search_key)
            if hashed != message.subject_hash:
                message.subject_hash, dirty = hashed, True
            if hashed != NO_SUBJECT:
                hashes.setdefault(message.owner_id, set()).add(hashed)
            if dirty:
                changed.append(message)
        with transaction.atomic():
            Message.objects.bulk_update(changed, ["thread_key", "subject_hash"])
            for owner, owner_hashes in hashes.items():
                relink_subjects(owner, owner_hashes, search_key_for(owner))
        updated += len(changed)
        processed += len(chunk)
        last_pk = chunk[-1].pk
        if progress:
            progress(processed, total)
    skipped = Message.objects.filter(owner_id__in=locked).count() if locked else 0
    return updated, skipped


class Command(BaseCommand):
    help = "Compute thread keys for messages without one (resumable); --all recomputes every key selected."

    def add_arguments(self, parser) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--all", action="store_true", help="recompute keys that are already set")

    def handle(self, *args, **options) -> None:
        owner_id = owner_id_from(options)
        tty = sys.stdout.isatty()

        def progress(processed: int, total: int) -> None:
            if tty:
                self.stdout.write(f"\r{processed}/{total} messages", ending="")

        updated, skipped = backfill_threads(owner_id, options["since"], options["all"], progress)
        if tty:
            self.stdout.write("")
        note = f" ({skipped} message(s) of logged-out strict-mode users skipped)" if skipped else ""
        self.stdout.write(self.style.SUCCESS(f"Updated the thread key of {updated} message(s){note}."))
