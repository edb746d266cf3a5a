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

from django.core.management.base import BaseCommand

from mail.management.selection import add_selection_arguments, owner_id_from
from mail.threading_keys import backfill


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

        updated, skipped = backfill(owner_id, options["since"], options["all"], progress)
        if tty:
            self.stdout.write("")
        note = f" ({skipped} message(s) of logged-out strict-mode users skipped)" if skipped else ""
        self.stdout.write(self.style.SUCCESS(f"Updated the thread key of {updated} message(s){note}."))
