"""`manage.py invite EMAIL [--days N] [--address-only]`: invite someone to sign up, print the link."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import invitations


class Command(BaseCommand):
    help = (
        "Invite EMAIL to create an account and print the single-use registration link (built from "
        "MAILHELPER_BASE_URL; shown only now, Mailhelper keeps only its hash). With --address-only no link "
        "is made: registering with that address is allowed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--days", type=int, default=None, help="days the invitation is valid (default 14)")
        parser.add_argument("--address-only", action="store_true", help="allow the address, make no link")

    def handle(self, *args, **options) -> None:
        try:
            invitation, token = invitations.create(
                options["email"], days=options["days"], with_link=not options["address_only"]
            )
        except ValidationError as exc:
            raise CommandError(f"{options['email']!r}: {' '.join(exc.messages)}") from None
        mode = invitations.mode()
        if mode != invitations.INVITE:
            self.stderr.write(
                f"Note: MAILHELPER_REGISTRATION is {mode!r}; the invitation counts only in 'invite' mode."
            )
        until = f"{invitation.expires_at:%Y-%m-%d %H:%M %Z}"
        if token is None:
            self.stdout.write(f"Invited {invitation.email} (address only) until {until}.")
        else:
            self.stdout.write(f"Invited {invitation.email} until {until}. Single-use link (shown only now):")
            self.stdout.write(invitations.link(token))
