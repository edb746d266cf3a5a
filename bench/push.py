"""Push at scale: 1,000 IDLE connections held by one watcher process, and the time from APPEND to stored message.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailhelper_push \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 BENCH_BROKER_URL=redis://127.0.0.1:6379/12 \
    .venv/bin/python bench/push.py [--accounts 1000 --samples 40 --rest 30]

Target (issue #13): one `manage.py watch_mailboxes` process holds --accounts IMAP IDLE connections to a
local Dovecot (one passwd-file user each); figures printed: the watcher's memory (RSS) and threads, its
CPU at rest over --rest seconds, and for --samples messages APPENDed one at a time over IMAP (as a mail
server delivers them) to spread-out accounts, the latency until the message is a row in PostgreSQL
(IDLE EXISTS -> watcher -> debounced sync task -> worker -> stored), median and p95. The sample
accounts are synced once first, so a measured sync is the incremental one of a live mailbox.
MAILHELPER_IDLE_DEBOUNCE_SECONDS (default 1 s) is part of every latency: a burst of mail is one sync.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, fresh_user, setup_django


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def dovecot_rss_mb(server) -> tuple[int, float]:
    """(imap processes, their summed RSS) of this Dovecot instance (children of its master): the server's side."""
    master = server._process.pid
    count, total = 0, 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == master and name == "imap":
            count, total = count + 1, total + rss_mb(int(pid))
    return count, total


def ensure_inotify_instances(wanted: int) -> str:
    """Dovecot's IDLE wakes on inotify, one instance per imap process; past the kernel's per-user limit
    (128 by default) it falls back to polling every 30 s (mailbox_idle_check_interval), which would be
    measured as our latency. Raised here when we may (root); said so when not."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    current = int(path.read_text())
    if current >= wanted:
        return f"{current}"
    try:
        path.write_text(str(wanted))
    except OSError:
        return f"{current} (could not raise it: Dovecot polls every 30 s beyond that many connections)"
    return f"{current} -> {wanted}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=40, help="messages APPENDed, one at a time")
    parser.add_argument("--rest", type=float, default=30.0, help="seconds of rest to measure CPU over")
    args = parser.parse_args()
    setup_django("mailhelper_push")

    from imapclient import IMAPClient

    from mail.models import MailAccount, Message
    from mailhelper.celery import app
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.celery_worker import service_env, start_worker, stop_worker
    from tests.plugins.mail import make_raw, run_sync

    print(f"inotify instances:      {ensure_inotify_instances(args.accounts + 200)}")
    server = DovecotServer.create(max_connections=args.accounts + 50)
    server.start()
    worker = watcher = None
    try:
        seeding = time.perf_counter()
        MailAccount.objects.all().delete()
        owner = fresh_user("bench-push")
        users, accounts = [], []
        for n in range(args.accounts):
            user = server.add_user()
            users.append(user)
            accounts.append(
                MailAccount(
                    owner=owner,
                    name=f"push {n:05d}",
                    email_address=f"push{n}@example.test",
                    imap_host=server.host,
                    imap_port=server.port,
                    imap_security="plain",
                    imap_username=user.username,
                    imap_password=user.password,
                    status=MailAccount.Status.OK,
                )  # fmt: skip
            )
        for account in accounts:
            account.save()  # one by one: encrypted fields and the beat row as the product makes them
        step = max(1, args.accounts // args.samples)
        sample = list(range(0, args.accounts, step))[: args.samples]
        for n in sample:
            assert run_sync(accounts[n]).status == "success"
        print(f"seeding:                {time.perf_counter() - seeding:.1f} s (not part of the figures)")

        app.control.purge()
        logs = Path(tempfile.mkdtemp(prefix="mailhelper-push-"))
        worker = start_worker(logs / "worker.log", concurrency=2, hostname=f"bench-push-{os.getpid()}@bench")
        env = {**service_env(), "MAILHELPER_IDLE_MAX_CONNECTIONS": str(args.accounts + 10)}
        started = time.perf_counter()
        with open(logs / "watcher.log", "wb") as log:
            watcher = subprocess.Popen(  # noqa: S603 (our interpreter and manage.py)
                [sys.executable, str(ROOT / "manage.py"), "watch_mailboxes"], env=env, stdout=log, stderr=log, cwd=ROOT
            )
        deadline = time.monotonic() + 300
        while dovecot_rss_mb(server)[0] < args.accounts and time.monotonic() < deadline:
            time.sleep(0.5)
        connected, server_rss = dovecot_rss_mb(server)
        print(f"connections up:         {connected} of {args.accounts} in {time.perf_counter() - started:.1f} s")
        time.sleep(5)  # let the IDLEs settle before measuring rest

        cpu_before, rest_started = cpu_seconds(watcher.pid), time.perf_counter()
        time.sleep(args.rest)
        cpu_rest = (cpu_seconds(watcher.pid) - cpu_before) / (time.perf_counter() - rest_started)
        print(f"watcher at rest:        RSS {rss_mb(watcher.pid):.0f} MB, {threads(watcher.pid)} threads, "
              f"CPU {cpu_rest * 100:.2f} % of one core over {args.rest:.0f} s")  # fmt: skip
        print(f"dovecot side:           {connected} imap processes, {server_rss:.0f} MB RSS together")

        latencies = []
        for number, n in enumerate(sample):
            user, account = users[n], accounts[n]
            subject = f"push sample {number}"
            with IMAPClient(server.host, port=server.port, ssl=False) as client:
                client.login(user.username, user.password)
                client.append("INBOX", make_raw(10_000 + number, subject=subject))
            appended = time.perf_counter()
            deadline = time.monotonic() + 30
            while not Message.objects.filter(account=account).exists():  # the sample mailboxes were empty
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            else:
                latencies.append(time.perf_counter() - appended)
                continue
            print(f"  sample {number}: not stored within 30 s")
        if latencies:
            ordered = sorted(latencies)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(f"APPEND -> stored:       median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, "
                  f"max {ordered[-1]:.2f} s ({len(latencies)} of {len(sample)} messages)")  # fmt: skip
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(30)
        if worker is not None:
            stop_worker(worker)
        server.cleanup()


if __name__ == "__main__":
    main()
