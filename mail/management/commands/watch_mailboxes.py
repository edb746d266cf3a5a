"""`manage.py watch_mailboxes`: hold an IMAP IDLE connection per account so new mail is synced in
seconds instead of at the next poll (mail/idle.py). Runs until SIGTERM/SIGINT, beside the workers.

Several processes split the accounts: `--shard 0/2` on one machine, `--shard 1/2` on another (or
MAILHELPER_IDLE_SHARD); each holds at most MAILHELPER_IDLE_MAX_CONNECTIONS connections.
"""

from __future__ import annotations

import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.keyring import check_sync_key_at_startup
from mail.idle import Shard, Watcher, reload_seconds


def parse_shard(text: str) -> Shard:
    try:
        index, count = (int(part) for part in text.split("/"))
        return Shard(index, count)
    except ValueError as exc:
        raise CommandError(f"--shard takes INDEX/COUNT, e.g. 0/2 for the first of two watchers ({exc})") from None


class Command(BaseCommand):
    help = "Watch mailboxes with IMAP IDLE and queue a sync when new mail arrives (runs until stopped)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--shard",
            default=os.environ.get("MAILHELPER_IDLE_SHARD", "0/1"),
            help="INDEX/COUNT: watch the accounts whose id modulo COUNT is INDEX (default 0/1: all)",
        )
        parser.add_argument("--once", action="store_true", help="start the connections, report, and stop (a check)")

    def handle(self, *args, **options) -> None:
        check_sync_key_at_startup()  # as the worker does: without the key no password can be read
        shard = parse_shard(options["shard"])
        watcher = Watcher(shard, settings.MAILHELPER_IDLE_MAX_CONNECTIONS)
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        self.stdout.write(f"Watching mailboxes (shard {shard.index}/{shard.count}); Ctrl-C stops.")
        last = None
        try:
            while True:
                state = watcher.reconcile()
                if state != last and (state["started"] or state["stopped"] or last is None):
                    self.stdout.write(
                        f"{state['watching']} connection(s): {state['started']} started, {state['stopped']} stopped"
                    )
                last = state
                if options["once"] or stopping.wait(reload_seconds()):
                    break
        finally:
            watcher.stop()
        self.stdout.write("Stopped.")
