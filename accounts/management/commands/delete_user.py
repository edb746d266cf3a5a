"""`manage.py delete_user USERNAME`: remove a user and everything they stored, after confirmation."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.deletion import delete_user
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Delete a user with their mail accounts, messages, tags, rules, analyses, jobs, task results, "
        "2FA devices and key wraps. Mail on the IMAP servers is not touched. Asks to type the username."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **options) -> None:
        username = options["username"]
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not options["yes"]:
            self.stdout.write(
                f"This permanently deletes {username} and all their data here (mail on the IMAP servers stays)."
            )
            if input("Type the username to confirm: ").strip() != username:
                raise CommandError("not confirmed: nothing was deleted")
        removed = delete_user(user)
        for label, count in sorted(removed.items()):
            self.stdout.write(f"  {label}: {count}")
        self.stdout.write(self.style.SUCCESS(f"Deleted user {username}."))
