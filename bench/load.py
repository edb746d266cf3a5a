"""20 concurrent users browsing the list, detail, dashboard and search pages against gunicorn while their accounts sync.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailhelper_load \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/9 BENCH_BROKER_URL=redis://127.0.0.1:6379/13 \
    .venv/bin/python bench/load.py [--users 20 --messages 200 --seconds 60]

Targets (#15): no think time p95 < 300 ms and 0 errors; `--think 1` p95 < 100 ms on every page. Printed
beside the latencies: gunicorn's CPU per request (its processes' CPU time over the measured window /
requests), the figure that does not depend on what else the machine runs. Why under sync: the pages must
stay fast while the worker writes the same tables (new messages, analyses, flag changes), which is the
normal state of a busy instance. The client is Python (httpx) on loopback, one thread per user. By
default there is no think time (each user clicks again the moment a page arrives): a closed loop that
measures the server saturated, an upper bound on what 20 people clicking would cause. `--think SECONDS`
makes each user pause a random 0.5x-1.5x that long between pages, as people reading a page do; both
figures are worth printing, the second is the one people feel.

Sessions are created directly in the session store (past the TOTP step, which tests/accounts covers)
and sent as the session cookie; an error is an exception, a status >= 400, or a redirect (it would
mean the session was not accepted).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from common import ROOT, setup_django

PAGES = ("list", "detail", "dashboard", "search")
SEARCH_URL = "/mail/search/?q=message"  # every generated subject is "Message number N"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def session_cookie(test_user) -> str:
    """A verified session (password and TOTP steps done) in the same store gunicorn reads."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django_otp import DEVICE_ID_SESSION_KEY

    user = test_user.user
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[DEVICE_ID_SESSION_KEY] = test_user.device.persistent_id
    session.save()
    return session.session_key


def start_gunicorn(port: int, log_path: Path, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,  # DATABASE_URL, REDIS_URL, broker: set by setup_django
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "SECURE_COOKIES": "0",
        "LOG_LEVEL": "WARNING",
    }
    log = log_path.open("ab")
    # The virtualenv running this script (a worktree shares its checkout's .venv, it has none of its own).
    gunicorn = Path(sys.executable).parent / "gunicorn"
    cmd = [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "mailhelper.wsgi:application"]
    return subprocess.Popen(  # noqa: S603 - a fixed command line, no outside input
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_http(base: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/accounts/login/", timeout=5.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout}s")


def stop_process(process: subprocess.Popen) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200, help="messages per user before the run")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--sync-every", type=float, default=5.0, help="seconds between sync rounds")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between a user's pages (seconds)")
    parser.add_argument("--worker-nice", type=int, default=10, help="the worker's nice value (deploy: 10)")
    parser.add_argument("--no-sync", action="store_true", help="browse only: separates the sync's share of the latency")
    args = parser.parse_args()
    setup_django()

    import httpx

    from analysis import pipeline
    from mail import tasks
    from mail.models import MailAccount, Message
    from mail.sync import sync_account
    from mailhelper.local_dovecot import DovecotServer, free_port
    from tests.plugins.celery_worker import start_worker, stop_worker, wait_until_worker_idle
    from tests.plugins.mail import make_raw

    server = DovecotServer.create()
    server.start()
    work_dir = Path(tempfile.mkdtemp(prefix="mailhelper-load-"))
    gunicorn: subprocess.Popen | None = None
    worker = None
    owners = []
    try:
        seed_started = time.perf_counter()
        clients: list[tuple[str, list[str]]] = []  # (session key, message ids)
        pairs = []
        for u in range(args.users):
            imap_user = server.add_user()
            for i in range(args.messages):
                server.deliver(imap_user, make_raw(u * 100_000 + i, body_kb=4, html=i % 5 == 0))
            test_user = _fresh_test_user(f"bench-load-{u}")
            owners.append(test_user.user)
            account = MailAccount.objects.create(
                owner=test_user.user, name="load", email_address=f"load{u}@example.test", imap_host=server.host,
                imap_port=server.port, imap_security="plain", imap_username=imap_user.username,
                imap_password=imap_user.password,
            )  # fmt: skip
            run = sync_account(account.pk).run
            assert run.status == "success", run.error
            pipeline.analyse_many(pipeline.pending_for_account(account.pk).iterator(chunk_size=200))
            ids = [str(pk) for pk in Message.objects.filter(account=account).values_list("pk", flat=True)]
            clients.append((session_cookie(test_user), ids))
            pairs.append((account, imap_user))
        print(f"seeding and initial sync: {time.perf_counter() - seed_started:.1f} s (not part of the figure)")
        settle_database()

        # Niced as deploy/systemd/mailhelper-worker.service runs it: background sync yields the CPU to pages.
        worker = start_worker(
            work_dir / "worker.log", concurrency=2, hostname=f"bench-load-{os.getpid()}@bench", nice=args.worker_nice
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = start_gunicorn(port, work_dir / "gunicorn.log", args.web_workers)
        wait_for_http(base, gunicorn)

        # Warm-up, not measured: each gunicorn worker loads URLconf, templates and connections on its first requests.
        with httpx.Client(base_url=base, cookies={"sessionid": clients[0][0]}, timeout=30.0) as warm:
            for _ in range(args.web_workers * 3):
                for url in ("/mail/", f"/mail/messages/{clients[0][1][0]}/", "/mail/dashboard/", SEARCH_URL):
                    warm.get(url)

        results: dict[str, list[float]] = defaultdict(list)
        errors: Counter[str] = Counter()
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds
        syncs = Counter[str]()

        def browse(index: int, session_key: str, message_ids: list[str]) -> None:
            rnd = random.Random(index)
            # One connection per request, as nginx talks to gunicorn (deploy/nginx.conf has no upstream
            # keepalive): a kept-alive connection would pin each user to one gunicorn worker, however busy.
            with httpx.Client(
                base_url=base, cookies={"sessionid": session_key}, headers={"Connection": "close"}, timeout=10.0
            ) as client:
                n = 0
                if args.think:  # people do not all click at the same moment: without this pause all 20
                    time.sleep(rnd.uniform(0, args.think))  # first requests (the list) arrive at once
                while time.monotonic() < stop_at:
                    page = PAGES[n % len(PAGES)]
                    n += 1
                    url = {
                        "list": "/mail/",
                        "detail": f"/mail/messages/{rnd.choice(message_ids)}/",
                        "dashboard": "/mail/dashboard/",
                        "search": SEARCH_URL,
                    }[page]
                    started = time.perf_counter()
                    try:
                        status = client.get(url).status_code
                    except httpx.HTTPError as exc:
                        with lock:
                            errors[f"{page}: {type(exc).__name__}"] += 1
                        continue
                    elapsed = time.perf_counter() - started
                    with lock:
                        results[page].append(elapsed)
                        if status >= 300:
                            errors[f"{page}: HTTP {status}"] += 1
                    if args.think:
                        time.sleep(rnd.uniform(0.5, 1.5) * args.think)

        def sync_rounds() -> None:
            """New mail for every user every few seconds, and a sync of every account queued for it."""
            k = 0
            while time.monotonic() < stop_at - 1:
                for u, (account, imap_user) in enumerate(pairs):
                    for _ in range(2):
                        server.deliver(imap_user, make_raw(u * 100_000 + args.messages + k))
                        k += 1
                    tasks.sync_account.delay(account_id=str(account.pk), trigger="manual")
                    syncs["queued"] += 1
                time.sleep(min(args.sync_every, max(0.0, stop_at - time.monotonic())))

        threads = [threading.Thread(target=browse, args=(i, *c)) for i, c in enumerate(clients)]
        if not args.no_sync:
            threads.append(threading.Thread(target=sync_rounds))
        started = time.perf_counter()
        cpu_before = gunicorn_cpu(gunicorn.pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.seconds + 60)
        wall = time.perf_counter() - started
        cpu_used = gunicorn_cpu(gunicorn.pid) - cpu_before
        wait_until_worker_idle(timeout=120)

        everything = [x for values in results.values() for x in values]
        total = len(everything) + sum(v for k, v in errors.items() if "HTTP" not in k)
        think = f"think time {args.think:g} s" if args.think else "no think time"
        print(f"users / web workers:      {args.users} threads ({think}), gunicorn {args.web_workers} workers")
        print(f"measured for:             {wall:.0f} s")
        print(f"requests:                 {total} ({total / wall:.0f}/s)")
        print(f"errors:                   {sum(errors.values())} {dict(errors) if errors else ''}")
        print(f"gunicorn CPU per request: {cpu_used / max(1, total) * 1000:.1f} ms ({cpu_used:.0f} CPU s)")
        print(f"syncs queued meanwhile:   {syncs['queued']}")
        for page in (*PAGES, "overall"):
            values = everything if page == "overall" else results[page]
            if not values:
                continue
            print(
                f"{page + ':':<26}n={len(values):<6} p50 {statistics.median(values) * 1000:6.1f} ms  "
                f"p95 {percentile(values, 95) * 1000:6.1f} ms  p99 {percentile(values, 99) * 1000:6.1f} ms"
            )
        print("targets (#15):            0 errors; p95 < 300 ms with no think time, < 100 ms per page with --think 1")
    finally:
        if gunicorn is not None:
            stop_process(gunicorn)
        if worker is not None:
            stop_worker(worker)
        for owner in owners:
            owner.delete()
        server.stop()
        server.cleanup()


def gunicorn_cpu(master_pid: int) -> float:
    """CPU seconds gunicorn's processes have used so far: the master, its live workers, and the workers
    it reaped (one restarted after max_requests adds its time to the master's cutime/cstime)."""

    def times(pid: int, fields: slice) -> int:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return sum(int(x) for x in stat[stat.rindex(")") + 2 :].split()[fields])

    total = times(master_pid, slice(11, 15))  # utime, stime, cutime, cstime
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        workers = [int(pid) for pid in f.read().split()]
    for pid in workers:
        with contextlib.suppress(FileNotFoundError):  # exited between the listing and the read
            total += times(pid, slice(11, 13))
    return total / os.sysconf("SC_CLK_TCK")


def settle_database() -> None:
    """Let PostgreSQL finish with the seed before measuring: fresh statistics, dirty pages written.

    Without it the first ~20 s of the run measured the seed's aftermath (autovacuum analysing the
    new rows, a checkpoint flushing them) rather than the pages: a live instance is not minutes
    after bulk-inserting thousands of messages.
    """
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
    print(f"settling the database:    {time.perf_counter() - started:.1f} s (VACUUM ANALYZE, CHECKPOINT)")


def _fresh_test_user(username: str):
    """A user with a keyring and a confirmed TOTP device (fresh_user returns only the User)."""
    from accounts.models import User
    from tests.plugins.accounts import create_test_user

    User.objects.filter(username=username).delete()
    return create_test_user(username)


if __name__ == "__main__":
    main()
