"""`manage.py backfill_language`: the language of analysed mail stored before languages were detected."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from mail.management.selection import add_selection_arguments, owner_id_from

from ...jobs import detect_languages


class Command(BaseCommand):
    help = (
        "Detect the language of analysed messages that have none (resumable; no language model is called). "
        "--rebuild detects it again for everything selected. Strict-mode users who are logged out are skipped."
    )

    def add_arguments(self, parser) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--rebuild", action="store_true", help="detect again where a language is stored")

    def handle(self, *args, **options) -> None:
        tty = sys.stdout.isatty()

        def progress(done: int, total: int) -> None:
            if tty:
                self.stdout.write(f"\r{done}/{total} messages", ending="")

        checked, found = detect_languages(owner_id_from(options), options["since"], options["rebuild"], progress)
        if tty:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Checked {checked} message(s); {found} have a known language."))
