from django.core.management.base import BaseCommand

from accounts.keyring import new_sync_key_text


class Command(BaseCommand):
    help = "Print a new random server sync key (for MAILHELPER_SYNC_KEY or MAILHELPER_SYNC_KEY_FILE)."
    requires_system_checks = []  # must work before any key is configured

    def handle(self, *args, **options):
        self.stdout.write(new_sync_key_text())
