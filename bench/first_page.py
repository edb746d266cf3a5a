"""First page ready: how long after adding an account its inbox's first page (the newest 50 messages,
stored and analysed) is there, for a 10,000-message mailbox spanning five years on a local Dovecot,
with the default first-sync window (the last 12 months, older mail later in the background) and with
the whole mailbox. Both in one run, each through the real tasks in a real Celery worker (sync, the
analysis it announces after the first batch, the backfill), as "sync now" would start them.

    .venv/bin/python bench/first_page.py [--messages 10000] [--years 5]

"First page ready" is the moment the newest PAGE_SIZE messages of the mailbox are stored with their
analysis done; "first sync done" when the sync run finished; "no analysis pending" when, after
that, none of the account's analyses is pending (for the default window this includes the older
mail the backfill brought in the meantime, so it is not a figure of the window alone).

Measured 2026-12-08 on this 2-core machine (10,000 messages, 2,004 in the window):
    default window (last 12 months)    first page ready after 2.1 s; first sync done after 2.1 s
    whole mailbox                      first page ready after 3.8 s; first sync done after 11.4 s
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import fresh_user, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    setup_django("mailhelper_bench_first_page")

    from analysis.models import MessageAnalysis
    from analysis.views.inbox import PAGE_SIZE
    from mail import tasks
    from mail.models import MailAccount, Message, SyncRun
    from mailhelper.celery import app
    from tests.plugins.celery_worker import start_worker, stop_worker
    from tests.plugins.mail import make_raw
    from tests.plugins.mailservers import DovecotServer

    server = DovecotServer.create()
    server.start()
    try:
        imap_user = server.add_user()
        rnd = random.Random(18)
        now = datetime.now(UTC)
        span = timedelta(days=365 * args.years)
        seed_started = time.perf_counter()
        for i in range(args.messages):  # oldest first, evenly over the years: UID order is date order
            when = now - span + span * (i + 1) / args.messages
            raw = make_raw(i, body_kb=rnd.randint(2, 20), html=i % 4 == 0, date=when)
            server.deliver(imap_user, raw, internaldate=when)
        in_window = sum(1 for i in range(args.messages) if span * (i + 1) / args.messages >= span - timedelta(days=365))
        print(f"mailbox: {args.messages} messages over {args.years:g} years, {in_window} in the last 12 months")
        print(f"seeding the Maildir: {time.perf_counter() - seed_started:.1f} s (not part of the figures)")

        figures = {}
        for label, fields in (
            ("default window (last 12 months)", {}),
            ("whole mailbox", {"first_sync": MailAccount.FirstSync.ALL}),
        ):
            app.control.purge()
            with tempfile.TemporaryDirectory() as tmp:
                worker = start_worker(Path(tmp) / "worker.log", concurrency=2)
                try:
                    owner = fresh_user("bench-first-page")
                    account = MailAccount.objects.create(
                        owner=owner, name="bench", email_address="me@example.test", imap_host=server.host,
                        imap_port=server.port, imap_security="plain", imap_username=imap_user.username,
                        imap_password=imap_user.password, **fields,
                    )  # fmt: skip
                    newest = Message.objects.filter(account=account, uid__gt=args.messages - PAGE_SIZE)
                    started = time.perf_counter()
                    tasks.sync_account.delay(account_id=str(account.pk), trigger="manual")
                    first_page = synced = analysed = stored = None
                    while time.perf_counter() - started < args.timeout:
                        elapsed = time.perf_counter() - started
                        if first_page is None and (
                            MessageAnalysis.objects.filter(message__in=newest, state="done").count() == PAGE_SIZE
                        ):
                            first_page = elapsed
                        run = SyncRun.objects.filter(account=account, status="success").first()
                        if synced is None and run is not None:
                            synced, stored = elapsed, run.messages_new
                        pending = MessageAnalysis.objects.filter(message__account=account, state="pending")
                        if synced is not None and analysed is None and not pending.exists():
                            analysed = elapsed
                        if first_page is not None and analysed is not None:
                            break
                        time.sleep(0.1)
                    figures[label] = (first_page, synced, analysed, stored)
                finally:
                    stop_worker(worker)
                    app.control.purge()  # the backfill's next call, and anything else left queued
            account.delete()

        def seconds(value):
            return f"{value:.1f} s" if value is not None else f"not within {args.timeout:.0f} s"

        print(f"page size: {PAGE_SIZE} messages; 2 worker processes on this machine")
        for label, (first_page, synced, analysed, stored) in figures.items():
            print(
                f"{label:34} first page ready after {seconds(first_page)}; first sync done after "
                f"{seconds(synced)} ({stored} messages); no analysis pending after {seconds(analysed)}"
            )
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
