import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts import keyring


class Command(BaseCommand):
    help = (
        "Re-wrap every user's data key under a new sync key; no mail is re-encrypted. "
        "The new key is read from --new-key-file or standard input (never the command line, "
        "which other users can see in the process list). Afterwards set MAILHELPER_SYNC_KEY to it "
        "and restart web, worker and beat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--new-key-file", help="file holding the new key (default: read stdin)")

    def handle(self, *args, **options):
        if options["new_key_file"]:
            raw = Path(options["new_key_file"]).read_text()
        else:
            if sys.stdin.isatty():
                self.stderr.write("Paste the new key (from generate_sync_key) and press Enter:")
            raw = sys.stdin.readline()
        try:
            new_key = keyring.parse_sync_key(raw.strip(), "the new key")
            old_key = keyring.load_sync_key()
        except keyring.SyncKeyError as exc:
            raise CommandError(str(exc)) from None
        if new_key == old_key:
            raise CommandError("the new key is the key in use: nothing to rotate")
        count = keyring.rotate_sync_key(new_key)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rotated {count} data key wrap(s) to key id {keyring.crypto.key_id(new_key)}. "
                "Now put the new key in MAILHELPER_SYNC_KEY (or the file MAILHELPER_SYNC_KEY_FILE names) "
                "and restart web, worker and beat."
            )
        )
