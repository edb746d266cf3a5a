"""Initial sync of 10,000 messages (5-50 KB) from a local Dovecot into PostgreSQL, then a
no-change incremental sync of the same mailbox.

    .venv/bin/python bench/sync_throughput.py [--messages 10000] [--paths thread,processes] [--processes N]

Targets (issue 3): >= 500 messages/s initial, < 200 ms for the no-change sync; issue 15 asks
>= 1,200 messages/s initial. Where the time goes, and what changed: docs/notes/sync-speed.md.

The mailbox is seeded once and synced from scratch once per path, into a fresh account each:
"thread" parses and encrypts in the sync's own fetch thread (MAILHELPER_SYNC_PROCESSES=0, the code
before the parser processes), "processes" in mail/sync_pool.py's processes. Each line gives wall
time and the CPU seconds of the sync process, of its parser processes and of the whole machine
(Dovecot and PostgreSQL included): on a shared machine wall time varies with the neighbours' load,
CPU much less. The earlier changes of #15 are not switchable; the figure measured before them is
printed beside this run's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from common import fresh_user, setup_django

#: The initial sync on the shared 2-core machine on 2026-12-07, main at 7f785c1 (before #15).
BEFORE_ISSUE_15 = "472 messages/s, 17.2 MB/s"
#: The processes path before the parser's shortcuts (c12ac72), this command on a quiet machine at
#: 18:07 UTC on 2026-12-07, just before the same command on e183a97 (docs/notes/sync-speed.md): the
#: parse changes cannot be switched off, so that run on the old commit is the comparison.
BEFORE_PARSER_SHORTCUTS = "1,409-1,454 messages/s; CPU: sync process 3.2-3.3 s, parsers 6.8-6.9 s, machine 11.7-11.9 s"


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores; /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def timed_sync(sync_account, account_id) -> tuple[object, float, float, float, float]:
    """(run, wall s, sync process CPU s, parser processes CPU s, machine busy s) of one sync."""
    before, busy = os.times(), machine_busy()
    started = time.perf_counter()
    run = sync_account(account_id).run
    wall = time.perf_counter() - started
    after = os.times()
    own = (after.user + after.system) - (before.user + before.system)
    children = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return run, wall, own, children, machine_busy() - busy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--no-change-runs", type=int, default=5)
    parser.add_argument("--paths", default="thread,processes", help="thread, processes or both (in this order)")
    parser.add_argument("--processes", type=int, default=0, help="parser processes (default: the setting)")
    args = parser.parse_args()
    setup_django()

    from django.conf import settings

    from mail.models import MailAccount, Message
    from mail.sync import sync_account
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.mail import make_raw

    processes = args.processes or settings.MAILHELPER_SYNC_PROCESSES or min(os.cpu_count() or 1, 4)
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
        total_mb = sum(sizes) / 1e6
        print(
            f"messages:                {args.messages} ({total_mb:.0f} MB, mean {statistics.mean(sizes) / 1024:.1f} KB)"
        )
        print(f"seeding the Maildir:     {seed_seconds:.1f} s (not part of the figure)")
        owner = fresh_user("bench-sync")

        for path in args.paths.split(","):
            settings.MAILHELPER_SYNC_PROCESSES = 0 if path == "thread" else processes
            settings.MAILHELPER_SYNC_PROCESSES_FROM = 1
            account = MailAccount.objects.create(
                owner=owner, name=f"bench {path}", email_address="me@example.test", imap_host=server.host,
                imap_port=server.port, imap_security="plain", imap_username=imap_user.username,
                imap_password=imap_user.password,
            )  # fmt: skip
            run, initial, own, children, busy = timed_sync(sync_account, account.pk)
            assert run.status == "success", run.error
            stored = Message.objects.filter(account=account).count()
            assert stored == args.messages, (stored, args.messages)
            label = "in the sync's thread" if path == "thread" else f"in {processes} parser processes"
            print(
                f"initial sync, {label + ':':27} {initial:.1f} s = {args.messages / initial:.0f} messages/s, "
                f"{total_mb / initial:.1f} MB/s; CPU: sync process {own:.1f} s, parsers {children:.1f} s, "
                f"machine {busy:.1f} s of {initial * os.cpu_count():.1f}"
            )
            if path == args.paths.split(",")[-1]:
                no_change = []
                for _ in range(args.no_change_runs):
                    started = time.perf_counter()
                    again = sync_account(account.pk).run
                    no_change.append(time.perf_counter() - started)
                    assert again.messages_new == 0 and again.messages_updated == 0
            account.delete()
        print("  targets: >= 500 messages/s (#3), >= 1,200 (#15)")
        print(f"  before #15:            {BEFORE_ISSUE_15} (same machine, same messages)")
        print(f"  before parser shortcuts, 2 parser processes: {BEFORE_PARSER_SHORTCUTS}")
        print(
            f"no-change sync:          median {statistics.median(no_change) * 1000:.0f} ms, "
            f"max {max(no_change) * 1000:.0f} ms over {len(no_change)} runs  (target < 200 ms)"
        )
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
