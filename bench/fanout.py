"""10,000 accounts: no-change syncs fanned out over 2 and 4 worker processes.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailhelper_fanout \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 BENCH_BROKER_URL=redis://127.0.0.1:6379/12 \
    .venv/bin/python bench/fanout.py [--accounts 10000 --messages 2 --workers 2,4]

Target (issue #15): whether one machine's workers keep up with 10,000 accounts polled every 5 minutes
(10,000 / 300 s = 33 syncs/s). A local Dovecot holds one passwd-file user per account with a small
mailbox; every account is synced once first (the initial syncs, not measured), then for each worker
count a round of one no-change sync per account is queued at once (as beat would at worst) and timed
until every SyncRun of the round is final. Printed per round: syncs/s in all and per process,
PostgreSQL connections in use at most (pg_stat_activity), Redis memory at most (INFO memory), and
failures. The machine's two cores are shared with Dovecot and PostgreSQL: more processes than cores
show where the machine, not the design, is the limit.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from common import fresh_user, setup_django


class Peaks(threading.Thread):
    """Samples PostgreSQL connections to this database and Redis memory every 0.5 s while a round runs."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(daemon=True)
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.stop_event = threading.Event()
        self.connections = self.redis_bytes = 0

    def run(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            while not self.stop_event.is_set():
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                self.connections = max(self.connections, cursor.fetchone()[0])
                self.redis_bytes = max(self.redis_bytes, int(self.redis.info("memory")["used_memory"]))
                self.stop_event.wait(0.5)
        connection.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)


def queue_round(account_ids: list[str], trigger: str) -> None:
    from mail import tasks
    from mailhelper.celery import app

    with app.producer_or_acquire() as producer:
        for account_id in account_ids:
            tasks.sync_account.apply_async(kwargs={"account_id": account_id, "trigger": trigger}, producer=producer)


def wait_for_round(since, total: int, timeout: float) -> tuple[int, int]:
    """(finished, failed) SyncRuns queued since `since`, once all `total` are final or the time is up."""
    from mail.models import SyncRun

    final = [SyncRun.Status.SUCCESS, SyncRun.Status.FAILED]
    deadline = time.monotonic() + timeout
    while True:
        runs = SyncRun.objects.filter(queued_at__gte=since, status__in=final)
        finished = runs.count()
        if finished >= total or time.monotonic() > deadline:
            return finished, runs.filter(status=SyncRun.Status.FAILED).count()
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2, help="messages in each mailbox")
    parser.add_argument("--workers", default="2,4", help="worker process counts, one round each")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a round may take")
    args = parser.parse_args()
    setup_django("mailhelper_fanout")

    from django.utils import timezone

    from mail.models import MailAccount, SyncRun
    from mailhelper.celery import app
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.celery_worker import start_worker, stop_worker
    from tests.plugins.mail import make_raw

    server = DovecotServer.create(max_connections=200)
    server.start()
    logs = Path(tempfile.mkdtemp(prefix="mailhelper-fanout-"))
    try:
        seeding = time.perf_counter()
        MailAccount.objects.all().delete()
        SyncRun.objects.all().delete()
        owner = fresh_user("bench-fanout")
        ids = []
        for n in range(args.accounts):
            user = server.add_user()
            for m in range(args.messages):
                server.deliver(user, make_raw(n * 100 + m))
            account = MailAccount(
                owner=owner, name=f"fanout {n:05d}", email_address=f"fanout{n}@example.test",
                imap_host=server.host, imap_port=server.port, imap_security="plain",
                imap_username=user.username, imap_password=user.password,
            )  # fmt: skip
            account.save()  # one by one: encrypted fields and the beat row as the product makes them
            ids.append(str(account.pk))
        print(f"seeding {args.accounts} accounts: {time.perf_counter() - seeding:.0f} s (not part of the figures)")

        app.control.purge()
        worker = start_worker(logs / "initial.log", concurrency=4, hostname=f"fanout-initial-{os.getpid()}@bench")
        try:
            since, started = timezone.now(), time.perf_counter()
            queue_round(ids, "manual")
            finished, failed = wait_for_round(since, len(ids), args.timeout)
            seconds = time.perf_counter() - started
            print(f"initial syncs, 4 processes: {finished / seconds:.0f} syncs/s ({finished} in {seconds:.0f} s, "
                  f"{failed} failed) (not part of the figures)")  # fmt: skip
        finally:
            stop_worker(worker)

        for count in (int(c) for c in args.workers.split(",")):
            app.control.purge()
            worker = start_worker(
                logs / f"w{count}.log", concurrency=count, hostname=f"fanout-{count}-{os.getpid()}@bench"
            )
            peaks = Peaks(os.environ["CELERY_BROKER_URL"])
            try:
                since, started = timezone.now(), time.perf_counter()
                peaks.start()
                queue_round(ids, "schedule")
                finished, failed = wait_for_round(since, len(ids), args.timeout)
                seconds = time.perf_counter() - started
            finally:
                peaks.stop()
                stop_worker(worker)
            rate = finished / seconds
            print(f"no-change syncs, {count} processes: {rate:.0f} syncs/s ({rate / count:.0f} per process; "
                  f"{finished} in {seconds:.0f} s, {failed} failed); PostgreSQL connections at most "
                  f"{peaks.connections}; Redis memory at most {peaks.redis_bytes / 2**20:.1f} MB")  # fmt: skip
        print(f"needed for {args.accounts} accounts every 5 minutes: {args.accounts / 300:.0f} syncs/s")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
