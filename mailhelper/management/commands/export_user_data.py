"""`manage.py export_user_data USERNAME --output PATH`: the operator's side of "download my data"."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from mailhelper.data_export import ExportLocked, export_user_data


class Command(BaseCommand):
    help = (
        "Write a zip with a user's mail (.eml), tags, rules and settings (no passwords or API keys). "
        "A strict-mode user must be logged in: their data key is not available otherwise."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--output", required=True, help="path of the zip to write")
        parser.add_argument("--force", action="store_true", help="overwrite an existing file")

    def handle(self, *args, **options) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        output = Path(options["output"])
        if output.exists() and not options["force"]:
            raise CommandError(f"{output} exists: use --force to overwrite it")
        tty = sys.stdout.isatty()

        def progress(done: int, total: int) -> None:
            if tty:
                self.stdout.write(f"\r{done}/{total} messages", ending="")

        # Write next to the target and rename, so a failed export never leaves a half zip at PATH.
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("wb") as out:
                counts = export_user_data(user, out, progress)
        except ExportLocked:
            partial.unlink(missing_ok=True)
            raise CommandError(
                f"{user.username} uses strict mode and is logged out: their data key is not available, "
                "so their mail cannot be decrypted. Ask them to log in (or use 'Download my data')."
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
        if tty:
            self.stdout.write("")
        summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Exported {summary} to {output}."))
