"""`manage.py backfill_embeddings`: topic vectors for "similar messages" and "find messages about ...".

Per user: learns the topic projection when there is none or the mail has doubled since the last fit
(or with --refit), which writes every vector; otherwise only writes the vectors that are missing or of
an older projection. Resumable: vectors are committed chunk by chunk, and a rerun after completion
finds nothing. Strict-mode users who are logged out are skipped (their key is not available).
Prints counts and user names only, never content.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from accounts import keyring
from mail.management.selection import add_selection_arguments, owner_id_from
from mail.models import Message

from ... import similarity


class Command(BaseCommand):
    help = "Learn topics and write topic vectors where missing or stale (resumable); --refit learns anew."

    def add_arguments(self, parser) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--refit", action="store_true", help="learn the topics again even if not stale")

    def handle(self, *args, **options) -> None:
        owner_id = owner_id_from(options)
        indexed = Message.objects.exclude(search_ids=[]).order_by("owner_id").values_list("owner_id", flat=True)
        owners = [owner_id] if owner_id is not None else list(indexed.distinct())
        tty = sys.stdout.isatty()
        vectors = fits = skipped = 0
        for owner in owners:
            if keyring.is_locked(owner):
                skipped += 1
                continue

            def progress(done: int, total: int, owner=owner) -> None:
                if tty:
                    self.stdout.write(f"\ruser {owner}: {done}/{total} messages", ending="")

            if options["refit"] or similarity.needs_fit(owner):
                result = similarity.fit(owner, progress=progress)
                if result.status == "fitted":
                    fits += 1
                    vectors += result.vectors
                    continue
            vectors += similarity.catch_up(owner, since=options["since"], progress=progress)
        if tty:
            self.stdout.write("")
        note = f"; {skipped} logged-out strict-mode user(s) skipped" if skipped else ""
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {vectors} vector(s) for {len(owners) - skipped} user(s), refitted {fits}{note}.")
        )
