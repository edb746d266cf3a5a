import sys

from django.core.management.base import BaseCommand

from mail.management.selection import add_selection_arguments, owner_id_from

from ...search import backfill


class Command(BaseCommand):
    help = (
        "Build the blind keyword index for messages stored without one (resumable: run it again to "
        "continue). --rebuild re-indexes everything selected. Users in strict mode who are logged out are skipped."
    )

    def add_arguments(self, parser):
        add_selection_arguments(parser)
        parser.add_argument("--rebuild", action="store_true")

    def handle(self, *args, **options):
        owner_id = owner_id_from(options)

        def progress(done: int, total: int) -> None:
            if sys.stdout.isatty():
                self.stdout.write(f"\r{done}/{total} messages", ending="")

        done = backfill(owner_id, options["since"], options["rebuild"], progress)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Indexed {done} message(s)."))
