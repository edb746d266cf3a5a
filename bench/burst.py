"""1,000 sync and analysis tasks queued in one burst across 4 worker processes.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailhelper_burst \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/9 BENCH_BROKER_URL=redis://127.0.0.1:6379/13 \
    .venv/bin/python bench/burst.py [--tasks 1000 --accounts 50 --messages 20 --concurrency 4]

Target (issue 24): all succeed, none lost or duplicated. Why this benchmark exists: the system being
replaced lost 6 of 10 tasks to Redis protocol errors in a burst of 10, so the figure that matters is
"lost: 0", with throughput as a sanity check.

"Lost" is a task that never reached a final state within the deadline; "duplicates" are a second
SyncRun for one sync task (a task run twice), a second result row for one task id, or a message
stored twice (messages are unique per (folder, uidvalidity, uid); this checks the stored counts too).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import fresh_user, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="messages per IMAP user")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every task")
    args = parser.parse_args()
    setup_django()

    from django.db.models import Count
    from django_celery_results.models import TaskResult

    from analysis import tasks as analysis_tasks
    from mail import tasks
    from mail.models import MailAccount, Message, SyncRun
    from mailhelper.celery import app
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.celery_worker import start_worker, stop_worker, wait_until_worker_idle
    from tests.plugins.mail import make_raw

    server = DovecotServer.create()
    server.start()
    worker = None
    accounts: list[MailAccount] = []
    try:
        seed_started = time.perf_counter()
        for a in range(args.accounts):
            imap_user = server.add_user()
            for i in range(args.messages):
                server.deliver(imap_user, make_raw(a * 10_000 + i))
            owner = fresh_user(f"bench-burst-{a}")
            accounts.append(
                MailAccount.objects.create(
                    owner=owner,
                    name="burst",
                    email_address=f"burst{a}@example.test",
                    imap_host=server.host,
                    imap_port=server.port,
                    imap_security="plain",
                    imap_username=imap_user.username,
                    imap_password=imap_user.password,
                )  # fmt: skip
            )
        print(f"seeding:                 {time.perf_counter() - seed_started:.1f} s (not part of the figure)")

        app.control.purge()  # leftovers of an interrupted earlier run must not count
        log_path = Path(tempfile.mkdtemp(prefix="mailhelper-burst-")) / "worker.log"
        worker = start_worker(log_path, concurrency=args.concurrency, hostname=f"bench-burst-{os.getpid()}@bench")

        sync_ids: list[str] = []
        analyse_ids: list[str] = []
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for n in range(args.tasks):
                account_id = str(accounts[(n // 2) % len(accounts)].pk)  # each account: a sync and an analysis
                if n % 2 == 0:
                    result = tasks.sync_account.apply_async(
                        kwargs={"account_id": account_id, "trigger": "manual"}, producer=producer
                    )
                    sync_ids.append(result.id)
                else:
                    result = analysis_tasks.analyse_account.apply_async(
                        kwargs={"account_id": account_id}, producer=producer
                    )
                    analyse_ids.append(result.id)
        sent_seconds = time.perf_counter() - started
        ids = sync_ids + analyse_ids

        deadline = time.monotonic() + args.timeout
        final: dict[str, str] = {}
        while time.monotonic() < deadline:
            final = dict(
                TaskResult.objects.filter(task_id__in=ids, status__in=["SUCCESS", "FAILURE", "REVOKED"]).values_list(
                    "task_id", "status"
                )
            )
            if len(final) == len(ids):
                break
            time.sleep(0.25)
        wall = time.perf_counter() - started
        wait_until_worker_idle(timeout=120)  # the analyses that successful syncs chain, before counting

        statuses = Counter(final.values())
        result_rows = Counter(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", flat=True))
        runs = SyncRun.objects.filter(account__in=accounts)
        run_statuses = Counter(runs.values_list("status", flat=True))
        messages = Message.objects.filter(account__in=accounts)
        stored = messages.count()
        twice = (
            messages.values("folder_id", "uidvalidity", "uid").annotate(n=Count("id")).filter(n__gt=1).count()
        )  # fmt: skip
        duplicates = {
            "sync runs beyond one per sync task": max(0, runs.count() - len(sync_ids)),
            "result rows beyond one per task": sum(n - 1 for n in result_rows.values()),
            "messages stored twice": twice,
        }
        lost = len(ids) - len(final)

        print(f"tasks sent:              {len(ids)} ({len(sync_ids)} sync, {len(analyse_ids)} analysis) "
              f"in {sent_seconds:.2f} s, {args.concurrency} worker processes")  # fmt: skip
        print(f"succeeded:               {statuses.get('SUCCESS', 0)}")
        print(f"failed:                  {statuses.get('FAILURE', 0) + statuses.get('REVOKED', 0)}")
        print(f"lost (never finished):   {lost}")
        print(f"duplicates:              {sum(duplicates.values())} {duplicates}")
        print(f"sync runs:               {dict(run_statuses)} (skipped = another sync of the account was running)")
        expected = args.accounts * args.messages
        print(f"messages stored:         {stored} of {expected} delivered")
        print(f"wall time:               {wall:.1f} s = {len(final) / wall:.0f} tasks/s")
        if lost or statuses.get("SUCCESS", 0) != len(ids) or sum(duplicates.values()) or stored != expected:
            print(f"PROBLEM: see the worker log {log_path}")
    finally:
        if worker is not None:
            stop_worker(worker)
        for account in accounts:
            account.owner.delete()
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
