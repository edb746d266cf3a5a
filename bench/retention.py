"""Retention at scale: prune 100,000 old sync runs of 200 accounts in batches (core/retention.py).

Stores the runs with bulk_create (ages 15-60 days, one in 20 failed, so that the failures of the last
30 days and each account's newest run stay), then runs `retention.prune()` as the beat task does, while
a second connection keeps writing one account's newest run (as a sync's heartbeat does) to see whether
the purge ever holds it up. Prints the rows deleted and left, the dry run's and the prune's seconds, the
longest single batch in ms, and the longest wait of that concurrent write.

    .venv/bin/python bench/retention.py [--runs 100000] [--accounts 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

from common import fresh_user, setup_django

FAILED_EVERY = 20  # one run in 20 failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=200)
    args = parser.parse_args()
    setup_django()

    from core import retention
    from mail.models import SyncRun

    accounts = _store(args.runs, args.accounts)
    print(f"stored {args.runs:,} sync runs across {len(accounts)} accounts, 15-60 days old")

    started = time.perf_counter()
    would = retention.prune(dry_run=True)["sync runs"]
    dry_seconds = time.perf_counter() - started

    batches: list[tuple[str, int, float]] = []
    writer = _HeartbeatWriter(SyncRun.objects.filter(account_id=accounts[0]).order_by("-queued_at")[0].pk)
    writer.start()
    started = time.perf_counter()
    counts = retention.prune(on_batch=lambda name, rows, seconds: batches.append((name, rows, seconds)))
    seconds = time.perf_counter() - started
    writer.stop()

    runs = [(rows, s) for name, rows, s in batches if name == "sync runs"]
    left = SyncRun.objects.filter(account_id__in=accounts).count()
    print(f"dry run: would delete {would:,} sync runs, counted in {dry_seconds:.2f} s")
    print(
        f"prune: deleted {counts['sync runs']:,} sync runs in {seconds:.1f} s "
        f"({counts['sync runs'] / seconds:,.0f} rows/s), {len(runs)} batches of up to {retention.BATCH_SIZE:,}; "
        f"longest batch {max(s for _, s in runs) * 1000:.0f} ms, "
        f"median {statistics.median(s for _, s in runs) * 1000:.0f} ms"
    )
    print(f"left: {left:,} runs (each account's newest and the failures of the last 30 days)")
    print(f"other policies: { ({k: v for k, v in counts.items() if k != 'sync runs'}) }")
    print(
        f"a concurrent write of a kept run ({writer.writes} writes): "
        f"longest {writer.longest * 1000:.0f} ms, median {statistics.median(writer.waits) * 1000:.1f} ms"
    )


def _store(runs: int, account_count: int) -> list[int]:
    """A fresh user with `account_count` accounts and `runs` finished runs spread over them."""
    from django.db import connection
    from django.utils import timezone

    from mail.models import MailAccount, SyncRun

    owner = fresh_user("bench-retention")  # deleting the previous one takes its accounts and runs along
    accounts = MailAccount.objects.bulk_create(
        MailAccount(
            owner=owner,
            name=f"bench {n}",
            email_address=f"b{n}@example.test",
            imap_host="127.0.0.1",
            imap_username=f"b{n}",
        )
        for n in range(account_count)
    )  # fmt: skip  (bulk_create: no beat row per account, which this benchmark does not need)
    ids = [account.pk for account in accounts]
    now = timezone.now()
    statuses = [SyncRun.Status.FAILED if n % FAILED_EVERY == 0 else SyncRun.Status.SUCCESS for n in range(runs)]
    SyncRun.objects.bulk_create(
        (SyncRun(account_id=ids[n % account_count], status=statuses[n], finished_at=now) for n in range(runs)),
        batch_size=5_000,
    )
    # queued_at is auto_now_add: the ages are written afterwards, spread over 15-60 days to the minute.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mail_syncrun SET queued_at = now() - interval '15 days' - (id %% 64800) * interval '1 minute', "
            "finished_at = now() - interval '15 days' - (id %% 64800) * interval '1 minute' WHERE account_id = ANY(%s)",
            [ids],
        )
        cursor.execute("ANALYZE mail_syncrun")
    return ids


class _HeartbeatWriter:
    """Writes one run's heartbeat every 20 ms from a process of its own (so it shares no GIL with the
    prune) on a connection of its own, and records how long each write took."""

    def __init__(self, run_id: int):
        from django.conf import settings

        db = settings.DATABASES["default"]
        dsn = f"host={db['HOST']} port={db['PORT']} dbname={db['NAME']} user={db['USER']}"
        if db.get("PASSWORD"):
            dsn += f" password={db['PASSWORD']}"
        self._done, self._waits = multiprocessing.Event(), multiprocessing.Queue()
        self._process = multiprocessing.Process(target=_write_heartbeats, args=(dsn, run_id, self._done, self._waits))
        self.waits: list[float] = []

    def start(self) -> None:
        self._process.start()
        time.sleep(0.5)  # connected and writing before the prune starts

    def stop(self) -> None:
        self._done.set()
        self.waits = self._waits.get(timeout=30)
        self._process.join(10)

    @property
    def writes(self) -> int:
        return len(self.waits)

    @property
    def longest(self) -> float:
        return max(self.waits)


def _write_heartbeats(dsn: str, run_id: int, done, out) -> None:
    import psycopg

    waits = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        while not done.is_set():
            started = time.perf_counter()
            connection.execute("UPDATE mail_syncrun SET heartbeat_at = now() WHERE id = %s", [run_id])
            waits.append(time.perf_counter() - started)
            done.wait(0.02)
    out.put(waits)


if __name__ == "__main__":
    main()
