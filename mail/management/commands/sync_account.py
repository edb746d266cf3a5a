import sys

from django.core.management.base import BaseCommand, CommandError

from mail.models import MailAccount, SyncRun
from mail.sync import sync_account


class Command(BaseCommand):
    help = "Sync one mail account in the foreground, with progress on the terminal."

    def add_arguments(self, parser):
        parser.add_argument("account_id", help="the account's id (see the admin)")

    def handle(self, *args, account_id, **options):
        try:
            account = MailAccount.objects.get(pk=account_id)
        except (MailAccount.DoesNotExist, ValueError):
            raise CommandError(f"no mail account with id {account_id}") from None

        def progress(run: SyncRun) -> None:
            if sys.stdout.isatty():
                self.stdout.write(
                    f"\r{run.folders_done}/{run.folders_total} folders  {run.current_folder[:30]:30}  "
                    f"{run.messages_new} new  {run.messages_updated} updated  {run.bytes_fetched // 1024} KiB",
                    ending="",
                )

        outcome = sync_account(account.pk, trigger=SyncRun.Trigger.COMMAND, progress=progress)
        run = outcome.run
        self.stdout.write("")
        summary = (
            f"{run.get_status_display()}: {run.messages_new} new, {run.messages_updated} updated, "
            f"{run.messages_expunged} removed on the server, {run.bytes_fetched // 1024} KiB"
            + (f" in {run.duration_seconds:.2f} s" if run.duration_seconds is not None else "")
        )
        if run.status != SyncRun.Status.SUCCESS:
            raise CommandError(f"{summary}. {run.error}")
        self.stdout.write(self.style.SUCCESS(summary))
        for problem in run.errors:
            self.stderr.write(f"  {problem}")
