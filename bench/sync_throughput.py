"""Initial sync of 10,000 messages (5-50 KB) from a local Dovecot into PostgreSQL, then a
no-change incremental sync of the same mailbox.

    .venv/bin/python bench/sync_throughput.py [--messages 10000]

Targets (issue 3): >= 500 messages/s initial, < 200 ms for the no-change sync; issue 15 asks
>= 1,200 messages/s initial. Where the time goes, and what changed: docs/notes/sync-speed.md.
The changes of #15 are not switchable (each is a small fix), so the figure measured just before
them on the same machine is printed beside this run's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from common import fresh_user, setup_django

#: The initial sync on the shared 2-core machine on 2026-12-07, main at 7f785c1 (before #15).
BEFORE_ISSUE_15 = "472 messages/s, 17.2 MB/s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--no-change-runs", type=int, default=5)
    args = parser.parse_args()
    setup_django()

    from mail.models import MailAccount, Message
    from mail.sync import sync_account
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.mail import make_raw

    server = DovecotServer.create()
    server.start()
    try:
        imap_user = server.add_user()
        rnd = random.Random(7)
        sizes = []
        seed_started = time.perf_counter()
        for i in range(args.messages):
            size_kb = rnd.randint(5, 50)
            raw = make_raw(i, body_kb=size_kb, html=i % 4 == 0, attachment=b"\x01" * 4096 if i % 10 == 0 else None)
            sizes.append(len(raw))
            server.deliver(imap_user, raw)
        seed_seconds = time.perf_counter() - seed_started

        owner = fresh_user("bench-sync")
        account = MailAccount.objects.create(
            owner=owner, name="bench", email_address="me@example.test", imap_host=server.host,
            imap_port=server.port, imap_security="plain", imap_username=imap_user.username,
            imap_password=imap_user.password,
        )  # fmt: skip

        started = time.perf_counter()
        run = sync_account(account.pk).run
        initial = time.perf_counter() - started
        assert run.status == "success", run.error
        stored = Message.objects.filter(account=account).count()
        assert stored == args.messages, (stored, args.messages)

        no_change = []
        for _ in range(args.no_change_runs):
            started = time.perf_counter()
            again = sync_account(account.pk).run
            no_change.append(time.perf_counter() - started)
            assert again.messages_new == 0 and again.messages_updated == 0

        total_mb = sum(sizes) / 1e6
        print(
            f"messages:                {args.messages} ({total_mb:.0f} MB, mean {statistics.mean(sizes) / 1024:.1f} KB)"
        )
        print(f"seeding the Maildir:     {seed_seconds:.1f} s (not part of the figure)")
        print(
            f"initial sync:            {initial:.1f} s = {args.messages / initial:.0f} messages/s, "
            f"{total_mb / initial:.1f} MB/s  (target >= 500 messages/s; #15: >= 1,200)"
        )
        print(f"  before #15:            {BEFORE_ISSUE_15} (same machine, same messages)")
        print(
            f"no-change sync:          median {statistics.median(no_change) * 1000:.0f} ms, "
            f"max {max(no_change) * 1000:.0f} ms over {len(no_change)} runs  (target < 200 ms)"
        )
        account.delete()
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
