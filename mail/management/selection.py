"""What the backfill and reprocess commands share: selecting by user and date."""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError

from accounts.models import User


def add_selection_arguments(parser) -> None:
    parser.add_argument("--user", help="username")
    parser.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD (message date)")


def owner_id_from(options: dict) -> int | None:
    """The --user's id (None: every user); a clear error for an unknown name."""
    if not options.get("user"):
        return None
    owner_id = User.objects.filter(username=options["user"]).values_list("pk", flat=True).first()
    if owner_id is None:
        raise CommandError(f"no user named {options['user']!r}")
    return owner_id
