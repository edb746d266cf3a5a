"""`manage.py backfill_threads`: fill Message.thread_key from the stored raw headers.

For messages stored before threading existed (or imported without it). Resumable: only messages
with an empty key are selected unless --all, and each chunk is saved as it goes, so a rerun after an
interruption continues and a rerun after completion finds nothing. Strict-mode users who are logged
out are skipped (their raw source cannot be decrypted); a later run picks them up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import keyring
from mail.management.selection import add_selection_arguments, owner_id_from
from mail.models import Message
from mail.parsing import parse_message
from mail.search import search_key_for
from mail.threading_keys import storable_thread_key

CHUNK = 200


def backfill_threads(
    owner_id: int | None = None,
    since: date | None = None,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Recompute thread keys; returns (updated, skipped). Only ids and keys are touched, never logged."""
    qs = Message.objects.filter(raw__isnull=False)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if since:
        qs = qs.filter(sort_date__date__gte=since)
    if not everything:
        qs = qs.filter(thread_key="")
    locked = [uid for uid in set(qs.values_list("owner_id", flat=True)) if keyring.is_locked(uid)]
    qs = qs.exclude(owner_id__in=locked).only("id", "owner_id", "thread_key", "raw").order_by("pk")
    total = qs.count()
    updated = processed = 0
    last_pk = None
    while True:
        chunk = list((qs if last_pk is None else qs.filter(pk__gt=last_pk))[:CHUNK])
        if not chunk:
            break
        changed = []
        for message in chunk:
            parsed_key = parse_message(bytes(message.raw)).thread_key
            key = storable_thread_key(parsed_key, search_key_for(message.owner_id))[:995]  # never a subject
            if key != message.thread_key:
                message.thread_key = key
                changed.append(message)
        with transaction.atomic():
            Message.objects.bulk_update(changed, ["thread_key"])
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
