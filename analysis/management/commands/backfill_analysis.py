"""`manage.py backfill_analysis`: analyse stored mail that has no result yet (e.g. after an import).

Resumable by construction: it selects only rows still pending (and failed ones with --failed), and a
row leaves that state as soon as it is analysed, so an interrupted run continues where it stopped
and a finished one finds nothing. --all re-analyses everything selected (corrections are kept).
Strict-mode users who are logged out are skipped: their rows stay pending for a later run.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from mail.management.selection import add_selection_arguments, owner_id_from

from ...jobs import reanalyse, selection
from ...models import MessageAnalysis


class Command(BaseCommand):
    help = "Analyse pending messages (resumable); --failed retries failed ones too, --all re-analyses everything."

    def add_arguments(self, parser) -> None:
        add_selection_arguments(parser)
        parser.add_argument("--failed", action="store_true", help="also retry failed analyses")
        parser.add_argument("--all", action="store_true", help="re-analyse done rows too")

    def handle(self, *args, **options) -> None:
        owner_id = owner_id_from(options)
        qs = selection(owner_id=owner_id, since=options["since"])
        if not options["all"]:
            states = [MessageAnalysis.State.PENDING]
            if options["failed"]:
                states.append(MessageAnalysis.State.FAILED)
            qs = qs.filter(state__in=states)
        tty = sys.stdout.isatty()

        def progress(processed: int, total: int) -> None:
            if tty:
                self.stdout.write(f"\r{processed}/{total} messages", ending="")

        done, failed = reanalyse(qs, progress)
        if tty:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Analysed {done} message(s), {failed} failed."))
