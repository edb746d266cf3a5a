import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from mail.search import backfill


class Command(BaseCommand):
    help = (
        "Build the blind keyword index for messages stored without one (resumable: run it again to "
        "continue). --rebuild re-indexes everything selected. Users in strict mode who are logged out are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", help="username")
        parser.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD (message date)")
        parser.add_argument("--rebuild", action="store_true")

    def handle(self, *args, **options):
        owner_id = None
        if options["user"]:
            owner_id = User.objects.filter(username=options["user"]).values_list("pk", flat=True).first()
            if owner_id is None:
                raise CommandError(f"no user named {options['user']!r}")

        def progress(done: int, total: int) -> None:
            if sys.stdout.isatty():
                self.stdout.write(f"\r{done}/{total} messages", ending="")

        done = backfill(owner_id, options["since"], options["rebuild"], progress)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Indexed {done} message(s)."))
