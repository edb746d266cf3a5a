"""`manage.py prune [--dry-run]`: delete history past its age now, as the daily beat task does."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from core import retention


class Command(BaseCommand):
    help = (
        "Delete old sync runs, done outbox rows, finished jobs and task results (MAILHELPER_RETENTION_*_DAYS), "
        "in batches of 5,000 rows. --dry-run counts what would go and deletes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

    def handle(self, *args, **options) -> None:
        dry_run = options["dry_run"]
        counts = retention.prune(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for policy in retention.policies():
            age = f"older than {policy.days} days" if policy.days > 0 else f"kept for ever ({policy.days_setting}=0)"
            self.stdout.write(f"{policy.name}: {verb} {counts[policy.name]} ({age})")
        total = sum(counts.values())
        self.stdout.write(self.style.SUCCESS(f"{'Would delete' if dry_run else 'Deleted'} {total} row(s) in all."))
