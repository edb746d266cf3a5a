import sys
from datetime import date

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError

from mail.management.selection import owner_id_from
from mail.models import MailAccount

from ... import jobs


class Command(BaseCommand):
    help = (
        "Analyse stored messages again (after an analyser upgrade or a provider change). "
        "Users' corrections are kept. Select by user, account and date range; --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", help="username")
        parser.add_argument("--account", help="mail account id")
        parser.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD (message date)")
        parser.add_argument("--until", type=date.fromisoformat, help="YYYY-MM-DD (message date)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be analysed, change nothing")

    def handle(self, *args, **options):
        owner_id = owner_id_from(options)
        if options["account"]:
            try:
                account = MailAccount.objects.get(pk=options["account"])
            except (MailAccount.DoesNotExist, ValueError, DjangoValidationError):
                raise CommandError(f"no mail account with id {options['account']}") from None
            if owner_id is not None and account.owner_id != owner_id:
                raise CommandError("that account belongs to another user")
        qs = jobs.selection(owner_id, options["account"], options["since"], options["until"])
        total = qs.count()
        if options["dry_run"]:
            self.stdout.write(f"{total} message(s) would be analysed again (dry run: nothing changed).")
            return
        if not total:
            self.stdout.write("Nothing to analyse.")
            return

        def progress(processed: int, of: int) -> None:
            width = 30
            filled = int(width * processed / of) if of else width
            line = f"\r[{'#' * filled}{'.' * (width - filled)}] {processed}/{of}"
            if sys.stdout.isatty():
                self.stdout.write(line, ending="")

        done, failed = jobs.reanalyse(qs, progress)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Analysed {done} message(s)" + (f", {failed} failed." if failed else "."))
        )
