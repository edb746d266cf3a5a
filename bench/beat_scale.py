"""django-celery-beat's DatabaseScheduler with one PeriodicTask row per mail account, at scale.

Creates N rows like mail/schedules.py does (task mail.sync_account, every 5 minutes, due times spread
evenly over the interval), runs a real `celery beat` process against them on a broker database of its
own, and reads what it sends straight off the Redis queue (no worker: the syncs are not run). Prints,
for each N:

- the beat process's CPU use (share of one core) and memory (RSS) at the end;
- how late due syncs were sent (p50, p95, max) and how many due ones were never sent;
- how long a changed row (an account whose interval is changed, as the account form does) takes to be
  noticed: from the save to its first task on the queue;
- how long one full read of the schedule takes in-process (beat re-reads every row on any change and
  at least every 5 minutes).

    .venv/bin/python bench/beat_scale.py                      # 1,000 and 10,000 rows, 120 s each
    .venv/bin/python bench/beat_scale.py --accounts 10000 --seconds 300
    .venv/bin/python bench/beat_scale.py --schedulers dispatch  # only the installation's scheduler

Both schedulers run for each N, one after the other: django-celery-beat's DatabaseScheduler ("plain",
an entry per row, what Mailhelper ran before issue #15) and mail.beat.AccountSyncScheduler
("dispatch", the account rows sent from one query by mail.sync_dispatch).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from common import ROOT, setup_django

SCHEDULERS = {
    "plain": "django_celery_beat.schedulers:DatabaseScheduler",
    "dispatch": "mail.beat:AccountSyncScheduler",
}
INTERVAL_SECONDS = 300  # mail accounts' default sync interval (5 minutes)
LEAD_SECONDS = 20  # the first rows fall due this long after the start, once beat has read them
CHANGED_AT = 45  # seconds into the run when one row is changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=int, default=120, help="how long beat runs for each N")
    parser.add_argument("--schedulers", nargs="+", choices=list(SCHEDULERS), default=list(SCHEDULERS))
    args = parser.parse_args()
    setup_django("mailhelper_bench_beat")
    every = INTERVAL_SECONDS // 60
    print(f"beat scale: one row per account every {every} min, {args.seconds} s each")
    for count in args.accounts:
        for scheduler in args.schedulers:
            print(_format(count, scheduler, _run(count, args.seconds, SCHEDULERS[scheduler])))


def _create_rows(count: int, start: float) -> None:
    """Rows as mail/schedules.ensure_schedule writes them, last run spread so that one row in
    count/INTERVAL falls due each second from LEAD_SECONDS on."""
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    PeriodicTask.objects.filter(name__startswith="bench sync ").delete()
    interval, _ = IntervalSchedule.objects.get_or_create(every=INTERVAL_SECONDS // 60, period=IntervalSchedule.MINUTES)
    origin = timezone.now() + timedelta(seconds=LEAD_SECONDS - INTERVAL_SECONDS + (start - time.time()))
    rows = [
        PeriodicTask(
            name=f"bench sync {i}",
            task="mail.sync_account",
            interval=interval,
            kwargs=json.dumps({"account_id": str(i)}),
            last_run_at=origin + timedelta(seconds=i * INTERVAL_SECONDS / count),
            enabled=True,
        )
        for i in range(count)
    ]
    PeriodicTask.objects.bulk_create(rows, batch_size=2000)
    PeriodicTasks.update_changed()  # bulk_create sends no signal: tell beat, as a save would


def _due_at(index: int, count: int, start: float) -> float:
    return start + LEAD_SECONDS + index * INTERVAL_SECONDS / count


def _run(count: int, seconds: int, scheduler: str) -> dict:
    import redis
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    broker = os.environ["CELERY_BROKER_URL"]
    client = redis.Redis.from_url(broker)
    client.flushdb()
    start = time.time()
    _create_rows(count, start)
    full_read = _time_full_read(scheduler)

    arrivals: dict[int, float] = {}
    stop = threading.Event()
    reader = threading.Thread(target=_read_queue, args=(client, arrivals, stop), daemon=True)
    reader.start()
    env = dict(os.environ)  # setup_django put the bench database and broker there
    with tempfile.TemporaryDirectory() as tmp, Path(tmp, "beat.log").open("wb") as log:
        beat = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "celery", "-A", "mailhelper", "beat", "--loglevel", "WARNING",
             "-S", scheduler, "--schedule", str(Path(tmp, "unused"))],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            changed_index = count  # a row of its own, created mid-run as a new account would be
            time.sleep(max(0.0, start + CHANGED_AT - time.time()))
            every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
            saved_at = time.time()
            PeriodicTask.objects.create(
                name=f"bench sync {changed_index}",
                task="mail.sync_account",
                interval=every_minute,
                kwargs=json.dumps({"account_id": str(changed_index)}),
                last_run_at=timezone.now() - timedelta(minutes=2),  # due at once, when noticed
            )
            cpu_before, wall_before = _cpu_seconds(beat.pid), time.time()
            time.sleep(max(0.0, start + seconds - time.time()))
            cpu = (_cpu_seconds(beat.pid) - cpu_before) / (time.time() - wall_before)
            rss = _rss_mib(beat.pid)
        finally:
            beat.terminate()
            beat.wait(30)
            stop.set()
            reader.join(5)
        tail = Path(tmp, "beat.log").read_text(errors="replace")[-1500:]
    PeriodicTask.objects.filter(name__startswith="bench sync ").delete()

    end = start + seconds
    due = [i for i in range(count) if _due_at(i, count, start) < end - 10]
    late = [arrivals[i] - _due_at(i, count, start) for i in due if i in arrivals]
    missed = len(due) - len(late)
    noticed = arrivals.get(changed_index)
    return {
        "full_read": full_read,
        "cpu": cpu,
        "rss": rss,
        "due": len(due),
        "late": sorted(late),
        "missed": missed,
        "noticed": None if noticed is None else noticed - saved_at,
        "log": tail if missed or noticed is None else "",
    }


def _time_full_read(scheduler: str) -> float:
    """What beat does on every change: build an entry for every enabled row it schedules itself."""
    from celery.utils.imports import symbol_by_name
    from django_celery_beat.schedulers import ModelEntry

    from mailhelper.celery import app

    reader = symbol_by_name(scheduler)(app=app, lazy=True)
    started = time.perf_counter()
    entries = [ModelEntry(model, app=app) for model in reader.enabled_models()]
    assert entries
    return time.perf_counter() - started


def _read_queue(client, arrivals: dict[int, float], stop: threading.Event) -> None:
    """Record when each account's sync reached the sync queue (first arrival only)."""
    while not stop.is_set():
        item = client.brpop(["sync"], timeout=1)
        if item is None:
            continue
        headers = json.loads(item[1])["headers"]
        if headers["task"] != "mail.sync_account":
            continue  # the project's own sweeps share the queue
        account = int(ast.literal_eval(headers["kwargsrepr"])["account_id"])
        arrivals.setdefault(account, time.time())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _format(count: int, scheduler: str, r: dict) -> str:
    late = r["late"]
    lateness = (
        f"p50 {statistics.median(late):.1f} s, p95 {late[int(len(late) * 0.95) - 1]:.1f} s, max {late[-1]:.1f} s"
        if late
        else "none sent"
    )
    noticed = "never" if r["noticed"] is None else f"{r['noticed']:.1f} s"
    text = (
        f"  {count:>6} rows, {scheduler:<8}: beat CPU {r['cpu'] * 100:.0f}% of a core, RSS {r['rss']:.0f} MiB; "
        f"{r['due']} due, sent late by {lateness}, {r['missed']} never sent; "
        f"a new row noticed after {noticed}; full schedule read {r['full_read']:.2f} s"
    )
    return text + (f"\n  beat log tail:\n{r['log']}" if r["log"] else "")


if __name__ == "__main__":
    main()
