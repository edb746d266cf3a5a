"""10,000 accounts: no-change syncs fanned out over 2 and 4 worker processes.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailhelper_fanout \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 BENCH_BROKER_URL=redis://127.0.0.1:6379/12 \
    .venv/bin/python bench/fanout.py [--accounts 10000 --messages 2 --workers 2,4] [--pools prefork,threads] [--before]

Target (issue #15): whether one machine's workers keep up with 10,000 accounts polled every 5 minutes
(10,000 / 300 s = 33 syncs/s). A local Dovecot holds one passwd-file user per account with a small
mailbox; every account is synced once first (the initial syncs, not measured), then for each worker
count a round of one no-change sync per account is queued at once (as beat would at worst) and timed
until every SyncRun of the round is final. Printed per round: syncs/s in all and per process,
PostgreSQL connections in use at most (pg_stat_activity), Redis memory at most (INFO memory),
failures, and CPU per sync of the workers, Dovecot and this database's PostgreSQL backends (/proc).
The analysis the initial syncs queue is waited for, so that it does not share a measured round.
`--before` runs every round first as before #15: Celery's fixup closing the database connection around
every task (CELERY_DB_REUSE_MAX=0), so the two figures come from one run. The machine's two cores are
shared with Dovecot and PostgreSQL: more processes than cores show where the machine, not the design,
is the limit.
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
    """Samples PostgreSQL connections to this database and Redis memory every 0.5 s while a round runs,
    and the CPU time of this database's backends (the workers keep theirs, CONN_MAX_AGE), which tells
    PostgreSQL's share apart from whatever else the shared machine runs."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(daemon=True)
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.stop_event = threading.Event()
        self.connections = self.redis_bytes = 0
        self.backend_start: dict[int, float] = {}
        self.backend_last: dict[int, float] = {}
        self.started = threading.Event()

    def run(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            while not self.stop_event.is_set():
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                pids = [row[0] for row in cursor.fetchall()]
                self.connections = max(self.connections, len(pids) + 1)
                for pid in pids:
                    cpu = tree_cpu(pid)
                    if not self.started.is_set():
                        self.backend_start[pid] = cpu
                    self.backend_last[pid] = cpu
                self.started.set()
                self.redis_bytes = max(self.redis_bytes, int(self.redis.info("memory")["used_memory"]))
                self.stop_event.wait(0.5)
        connection.close()

    @property
    def postgres_cpu(self) -> float:
        """CPU-seconds this database's backends used since the first sample (a backend that closed
        between two samples loses its last half second)."""
        return sum(cpu - self.backend_start.get(pid, 0.0) for pid, cpu in self.backend_last.items())

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


def wait_until_drained(redis_url: str, hostname: str, timeout: float) -> float:
    """Seconds until the broker's queues are empty and the worker runs nothing, e.g. the analysis tasks
    that the initial syncs queued; a round measured while they still run would share the processes."""
    import redis

    from mailhelper.celery import app

    broker = redis.Redis.from_url(redis_url)
    queues = [queue.name for queue in app.conf.task_queues]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if not any(broker.llen(name) for name in queues):
            active = app.control.inspect(destination=[hostname], timeout=2).active() or {}
            if active and not any(active.values()):
                break
        time.sleep(1)
    return time.perf_counter() - started


def tree_cpu(pid: int) -> float:
    """CPU-seconds used by a process and everything below it, reaped children included (/proc): the
    worker's pool processes, or Dovecot's imap and login processes that come and go with each sync."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # exited meanwhile: its time is in its parent's reaped-children fields
        total += sum(int(v) for v in fields[11:15]) / tick  # utime, stime, cutime, cstime
        pending.extend(int(child) for child in children)
    return total


def machine_busy() -> float:
    """CPU-seconds the whole machine has been busy since boot (/proc/stat), to show what a round used."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_round(
    ids: list[str], count: int, pool: str, label: str, env: dict[str, str], dovecot_pid: int, logs: Path,
    timeout: float,
) -> None:  # fmt: skip
    """One no-change sync of every account over `count` pool processes (or threads), and what it cost."""
    from django.utils import timezone

    from mailhelper.celery import app
    from tests.plugins.celery_worker import start_worker, stop_worker

    app.control.purge()
    hostname = f"fanout-{pool}-{count}-{len(env)}-{os.getpid()}@bench"
    worker = start_worker(
        logs / f"{pool}{count}{len(env)}.log", concurrency=count, env_overrides=env, hostname=hostname, pool=pool
    )
    peaks = Peaks(os.environ["CELERY_BROKER_URL"])
    try:
        since, started, busy = timezone.now(), time.perf_counter(), machine_busy()
        worker_cpu, dovecot_cpu = tree_cpu(worker.pid), tree_cpu(dovecot_pid)
        peaks.start()
        peaks.started.wait(5)
        queue_round(ids, "schedule")
        finished, failed = wait_for_round(since, len(ids), timeout)
        seconds = time.perf_counter() - started
        busy = machine_busy() - busy
        worker_cpu = tree_cpu(worker.pid) - worker_cpu
        dovecot_cpu = tree_cpu(dovecot_pid) - dovecot_cpu
    finally:
        peaks.stop()
        stop_worker(worker)
    rate = finished / seconds
    unit, each = ("processes", "process") if pool == "prefork" else ("threads in one process", "thread")
    print(f"no-change syncs, {count} {unit}{label}: {rate:.0f} syncs/s ({rate / count:.0f} per {each}; "
          f"{finished} in {seconds:.0f} s, {failed} failed); PostgreSQL connections at most "
          f"{peaks.connections}; Redis memory at most {peaks.redis_bytes / 2**20:.1f} MB; machine busy "
          f"{busy / seconds / os.cpu_count():.0%} of its {os.cpu_count()} cores")  # fmt: skip
    postgres_cpu = peaks.postgres_cpu
    rest = busy - worker_cpu - dovecot_cpu - postgres_cpu
    ms = 1000 / max(finished, 1)
    print(f"  CPU per sync: workers {worker_cpu * ms:.1f} ms, Dovecot {dovecot_cpu * ms:.1f} ms, "
          f"PostgreSQL {postgres_cpu * ms:.1f} ms (kept connections only); the rest of the machine (new "
          f"connections' backends, Redis, this process, anything else running) {rest * ms:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2, help="messages in each mailbox")
    parser.add_argument("--workers", default="2,4", help="worker process (or thread) counts, one round each")
    parser.add_argument(
        "--pools", default="prefork", help="Celery pools, one round per count each; deploy/ runs syncs on threads"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a round may take")
    parser.add_argument(
        "--before", action="store_true", help="also run each round as before #15 (Celery closing connections)"
    )
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
        initial_host = f"fanout-initial-{os.getpid()}@bench"
        worker = start_worker(logs / "initial.log", concurrency=4, hostname=initial_host)
        try:
            since, started = timezone.now(), time.perf_counter()
            queue_round(ids, "manual")
            finished, failed = wait_for_round(since, len(ids), args.timeout)
            seconds = time.perf_counter() - started
            print(f"initial syncs, 4 processes: {finished / seconds:.0f} syncs/s ({finished} in {seconds:.0f} s, "
                  f"{failed} failed) (not part of the figures)")  # fmt: skip
            drained = wait_until_drained(os.environ["CELERY_BROKER_URL"], initial_host, args.timeout)
            print(f"analysis after the initial syncs drained in {drained:.0f} s (not part of the figures)")
        finally:
            stop_worker(worker)

        variants = [("", {})]
        if args.before:
            variants.insert(0, (" before (a connection per task)", {"CELERY_DB_REUSE_MAX": "0"}))
        for pool in args.pools.split(","):
            for count in (int(c) for c in args.workers.split(",")):
                for label, env in variants:
                    run_round(ids, count, pool, label, env, server.master_pid, logs, args.timeout)
        print(f"needed for {args.accounts} accounts every 5 minutes: {args.accounts / 300:.0f} syncs/s")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
