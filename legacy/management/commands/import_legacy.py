import sys

from django.core.management.base import BaseCommand, CommandError

from legacy import importer, report
from legacy.source import SourceError, open_source


class Command(BaseCommand):
    help = (
        "Import the legacy application's data (SQLite file or PostgreSQL database), then compare per-table "
        "checksums of source and target; exits 1 on any difference. Idempotent: re-running imports nothing "
        "twice. --dry-run reads and validates without writing. Encrypted legacy values are converted at each "
        "user's first login."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--sqlite", metavar="PATH", help="the legacy SQLite file")
        source.add_argument("--database-url", metavar="URL", help="the legacy PostgreSQL, postgres://...")
        parser.add_argument("--dry-run", action="store_true", help="read and validate only; write nothing")
        parser.add_argument("--user", metavar="USERNAME", help="only this legacy user's data (username in the legacy)")

    def handle(self, *args, **options):
        try:
            source = open_source(options["sqlite"], options["database_url"])
        except SourceError as exc:
            raise CommandError(str(exc), returncode=2) from None

        def progress(table: str, done: int, total: int) -> None:
            if done == total or done % 5000 < importer.BATCH:
                self.stderr.write(f"{table}: {done}/{total} rows", ending="\r" if sys.stderr.isatty() else "\n")

        try:
            result = importer.run_import(
                source, dry_run=options["dry_run"], progress=progress, username=options.get("user")
            )
        except importer.ImportRunning as exc:
            raise CommandError(str(exc), returncode=2) from None
        finally:
            source.close()
        self.stderr.write("")
        self.stdout.write(report.render(result, dry_run=options["dry_run"]))
        if result.missing_user:
            raise CommandError(f"no legacy user named {result.missing_user!r}", returncode=2)
        if result.missing_tables:
            raise CommandError("the legacy database lacks tables: " + ", ".join(result.missing_tables), returncode=2)
        if not result.ok:
            bad = [t.table for t in result.tables if t.status == "MISMATCH"]
            raise CommandError(f"checksums differ in {len(bad)} table(s): {', '.join(bad)}", returncode=1)
        self.stdout.write(
            self.style.SUCCESS("Dry run: nothing written." if options["dry_run"] else "All checksums match.")
        )
