"""manage.py demo: the sample mailbox, synced and analysed, then the product (see mailhelper/demo/setup.py).

`make demo` runs it through scripts/demo.sh, which first starts PostgreSQL/Redis as `make up` does and
puts the demo's IMAP port on the outbound allow list of every process.
"""

import ipaddress
import os
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import outbound
from mailhelper.demo import setup
from mailhelper.local_dovecot import LOCALHOST

DEFAULT_IMAP_PORT = 10143


class Command(BaseCommand):
    help = "Start a local Dovecot with a sample mailbox, make the demo user, sync and analyse; then run the product."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir",
            default=str(
                Path(os.environ.get("MAILHELPER_LOCAL_SERVICES_DIR") or Path(settings.BASE_DIR) / "var") / "demo"
            ),
            help="where the demo's Dovecot, Maildir and credentials live (default: var/demo/)",
        )
        parser.add_argument(
            "--imap-port", type=int, default=int(os.environ.get("MAILHELPER_DEMO_IMAP_PORT") or DEFAULT_IMAP_PORT)
        )
        parser.add_argument("--run", action="store_true", help="then run web, workers and beat (honcho) until Ctrl-C")
        parser.add_argument("--code", action="store_true", help="only print the demo user's current TOTP code")

    def handle(self, *args, dir, imap_port, run, code, **options):
        if code:
            self.stdout.write(setup.current_code())
            return
        if not outbound.is_allowed(LOCALHOST, ipaddress.ip_address(LOCALHOST), imap_port):
            raise CommandError(
                f"the outbound policy refuses {LOCALHOST}:{imap_port}, so no process could reach the demo's Dovecot: "
                f"run `make demo`, or set MAILHELPER_OUTBOUND_ALLOW={LOCALHOST}:{imap_port}"
            )
        directory = Path(dir).resolve()
        self.stdout.write(f"Starting the demo's Dovecot on {LOCALHOST}:{imap_port} ({directory}/dovecot)")
        try:
            server = setup.start_dovecot(directory, imap_port)
        except setup.DemoError as exc:
            raise CommandError(str(exc)) from None
        try:
            self.stdout.write("Seeding the sample mailbox, syncing and analysing (a few seconds)...")
            try:
                login = setup.prepare(directory, server)
            except setup.DemoError as exc:
                raise CommandError(str(exc)) from None
            self._banner(login)
            if run:
                self._run_product()
        finally:
            server.stop()

    def _banner(self, login: setup.DemoLogin) -> None:
        url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/"
        lines = [
            "",
            f"  Mailhelper demo: {login.messages} messages synced, {login.analysed} analysed in {login.seconds:.1f} s",
            f"  Open       {url}",
            f"  User       {login.username}",
            f"  Password   {login.password}",
            f"  TOTP code  {setup.current_code(login.username)}   (a new one: .venv/bin/python manage.py demo --code)",
            f"  TOTP key   {login.totp_secret}   (for an authenticator app)",
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _run_product(self) -> None:
        """honcho in the foreground; Ctrl-C reaches it and its processes, then Dovecot stops in handle()."""
        honcho = Path(settings.BASE_DIR) / ".venv" / "bin" / "honcho"
        process = subprocess.Popen([str(honcho), "-f", "Procfile", "start"], cwd=settings.BASE_DIR)  # noqa: S603
        while True:
            try:
                process.wait()
                return
            except KeyboardInterrupt:
                continue  # the terminal sent SIGINT to honcho too: let it stop its processes
