"""The first sync's parser processes (mail/sync_pool.py), on real Dovecot, PostgreSQL and Celery.

What they must keep: the stored messages are those of the in-thread path (compared decrypted),
a parser that dies loses nothing and fails the run as an interrupted sync, no process is left
once the sync ends, and the data key they get is in no Celery message and no log line.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django_celery_results.models import TaskResult

from accounts import keyring
from mail.models import Attachment, MailAccount, Message, SyncRun
from mail.sync import sync_account
from mail.sync_pool import Job, ParserPool, Sealing, parse_and_seal
from tests.plugins.celery_worker import private_redis, service_env, start_private_worker, stop_worker
from tests.plugins.hostile_mail import SEEDS, mutations
from tests.plugins.mail import create_account, make_raw, run_sync
from tests.plugins.mailservers import free_port

pytestmark = pytest.mark.django_db

#: Compared between the two paths: everything but the row's own identity and time of insert.
SKIP = {"id", "account", "folder", "created_at"}


def pool_on(settings, processes: int = 2) -> None:
    settings.MAILHELPER_SYNC_PROCESSES = processes
    settings.MAILHELPER_SYNC_PROCESSES_FROM = 1


def pool_off(settings) -> None:
    settings.MAILHELPER_SYNC_PROCESSES = 0


def parser_children() -> list[int]:
    """This process's children started by multiprocessing's spawn method: the parsers. (Not its
    resource tracker, which holds the names of the pool's semaphores, no key, and lives as long as
    this process; nor the session's Dovecot.)"""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def snapshot(account: MailAccount) -> dict[int, dict]:
    """Every stored message by UID: its plain columns and its content decrypted, with its attachments."""
    fields = [f for f in Message._meta.concrete_fields if f.name not in SKIP]
    part_fields = [f for f in Attachment._meta.concrete_fields if f.name not in {"id", "message"}]
    out = {}
    for message in Message.objects.filter(account=account):
        row = {f.name: getattr(message, f.name) for f in fields}
        row["parts"] = [
            {f.name: getattr(part, f.name) for f in part_fields}
            for part in Attachment.objects.filter(message=message).order_by("position")
        ]
        out[message.uid] = row
    return out


def test_the_processes_store_what_the_thread_stores(dovecot, imap_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 7  # several batches, each in several jobs
    raws = [make_raw(i, body_kb=i % 30 + 1, html=i % 3 == 0, attachment=b"\x02" * 900 if i % 4 == 0 else None)
            for i in range(40)]  # fmt: skip
    raws += [make_raw(40, subject="Re: budget", message_id="")]  # a subject thread key: keyed in the child
    raws += list(SEEDS) + list(mutations(15, 30))  # broken charsets, encodings, boundaries, huge headers
    for raw in raws:
        dovecot.deliver(imap_user, raw)

    pool_off(settings)
    threaded = create_account(alice.user, imap_user, dovecot, name="thread")
    assert run_sync(threaded).status == SyncRun.Status.SUCCESS
    pool_on(settings)
    pooled = create_account(alice.user, imap_user, dovecot, name="processes")
    assert run_sync(pooled).status == SyncRun.Status.SUCCESS

    expected, got = snapshot(threaded), snapshot(pooled)
    assert len(got) == len(raws) and sorted(got) == sorted(expected)
    for uid, row in expected.items():
        assert got[uid] == row, f"UID {uid} differs"
    assert any(row["parts"] for row in got.values()) and any(row["parse_warnings"] for row in got.values())
    assert any(row["thread_key"].startswith("subject:") for row in got.values())
    assert parser_children() == []


def test_a_parser_process_that_dies_loses_nothing_and_the_next_sync_completes(dovecot, imap_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 10
    for i in range(80):
        dovecot.deliver(imap_user, make_raw(i, body_kb=10))
    account = create_account(alice.user, imap_user, dovecot)
    pool_on(settings)
    killed = []

    def kill_a_parser(run: SyncRun) -> None:
        children = parser_children()
        if run.messages_new and not killed and children:
            killed.append(children[0])
            os.kill(children[0], signal.SIGKILL)

    with pytest.raises(Exception) as raised:
        sync_account(account.pk, progress=kill_a_parser)
    assert killed, "no parser process was running during the sync"
    assert type(raised.value).__name__ == "ParserProcessLost"
    run = SyncRun.objects.filter(account=account).latest("pk")
    # Recorded as the in-thread path records any unexpected failure: interrupted, and by its kind only.
    assert run.status == SyncRun.Status.FAILED and run.error_kind == SyncRun.ErrorKind.INTERNAL
    assert "Interrupted" in run.error and "ParserProcessLost" in run.error
    stored = Message.objects.filter(account=account).count()
    assert 0 < stored < 80 and stored % 10 == 0, "only whole batches are committed"
    assert parser_children() == []

    again = run_sync(account)
    assert again.status == SyncRun.Status.SUCCESS and again.messages_new == 80 - stored
    uids = list(Message.objects.filter(account=account).values_list("uid", flat=True))
    assert sorted(uids) == list(range(1, 81)), "every message once"
    assert parser_children() == []


def test_an_exception_in_a_child_arrives_as_the_in_thread_path_raises_it():
    """A job the child cannot do (here: a key of the wrong length) fails in the sync with the same
    exception, type and text, as the same job done in the thread."""
    job = Job(b"short key", 1, Sealing("mail.message", (("subject", False, True),)), Sealing("mail.attachment", ()),
              (make_raw(1),))  # fmt: skip
    with pytest.raises(Exception) as in_thread:
        parse_and_seal(job)
    pool = ParserPool(1)
    try:
        with pytest.raises(type(in_thread.value)) as in_child:
            pool.result(pool.submit(job))
    finally:
        pool.close()
    assert str(in_child.value) == str(in_thread.value)
    assert parser_children() == []
    assert "short key" not in repr(job) and "Message number" not in repr(job)


def test_the_pool_is_started_for_the_fetch_and_gone_after_it(dovecot, imap_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 10
    for i in range(30):
        dovecot.deliver(imap_user, make_raw(i))
    account = create_account(alice.user, imap_user, dovecot)
    pool_on(settings, processes=2)
    during = []
    sync_account(account.pk, progress=lambda run: during.append(len(parser_children())))
    assert 0 < max(during) <= 2, "the parsers run while the folder is fetched"
    assert parser_children() == []

    settings.MAILHELPER_SYNC_PROCESSES_FROM = 1000  # a small fetch parses in the thread
    dovecot.deliver(imap_user, make_raw(30))
    during.clear()
    sync_account(account.pk, progress=lambda run: during.append(len(parser_children())))
    assert Message.objects.filter(account=account).count() == 31 and max(during) == 0


def test_parsers_exit_when_their_worker_is_killed(tmp_path):
    """A worker killed with SIGKILL shuts no pool down: its parsers notice and exit by themselves."""
    script = tmp_path / "killed_worker.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from mail.sync_pool import Job, ParserPool, Sealing\n"
        "if __name__ == '__main__':\n"
        "    pool = ParserPool(2)\n"
        "    none = Sealing('mail.message', ())\n"
        "    jobs = [pool.submit(Job(bytes(32), 1, none, none, (b'Subject: x\\r\\n\\r\\nhi',))) for _ in range(4)]\n"
        "    [pool.result(job) for job in jobs]\n"
        "    print(*pool.pids, flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    children = [int(pid) for pid in done.stdout.split()]
    assert children, done.stderr

    def alive(pid: int) -> bool:
        try:
            return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in children):
        assert time.monotonic() < deadline, "a parser outlived its killed worker"
        time.sleep(0.1)


def key_forms(dek: bytes) -> list[bytes]:
    return [
        dek,
        dek.hex().encode(),
        base64.b64encode(dek),
        base64.urlsafe_b64encode(dek),
        base64.b64encode(dek).rstrip(b"="),
        repr(dek).encode(),
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_key_is_in_no_celery_message_or_log_line(dovecot, imap_user, alice, tmp_path):
    """A sync queue worker as deploy/ runs it (--pool threads, DEBUG logs), its sync in processes;
    and a prefork worker, whose children may not start processes, parsing in the thread."""
    from mail import tasks
    from mailhelper.celery import app

    for i in range(60):
        dovecot.deliver(imap_user, make_raw(i, attachment=b"\x03" * 600 if i % 5 == 0 else None))
    dek = keyring.dek_for(alice.user.pk)
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    env = {
        **service_env(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": f"redis://127.0.0.1:{port}/1",
        "MAILHELPER_SYNC_BATCH": "10",
        "MAILHELPER_SYNC_PROCESSES": "2",
        "MAILHELPER_SYNC_PROCESSES_FROM": "1",
    }
    queue = f"pooltest-{os.getpid()}"
    logs = []
    with private_redis(port):
        for pool, name in (("threads", "thread pool"), ("prefork", "prefork")):
            account = create_account(alice.user, imap_user, dovecot, name=name)
            log_path = tmp_path / f"{pool}.log"
            with app.connection_for_write(broker) as conn:
                result = tasks.sync_account.apply_async(kwargs={"account_id": str(account.pk)}, queue=queue,
                                                        connection=conn)  # fmt: skip
            queued = redis.Redis(port=port).lrange(queue, 0, -1)
            assert len(queued) == 1 and str(account.pk).encode() in queued[0]
            for form in key_forms(dek):
                assert form not in queued[0], "the key is in the sync task's message"
            worker = start_private_worker(log_path, env, [queue], f"{pool}-{queue}@test", pool=pool, loglevel="DEBUG")
            try:
                deadline = time.monotonic() + 90
                while not TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists():
                    assert time.monotonic() < deadline, f"the sync did not finish: {worker.log_tail()}"
                    time.sleep(0.2)
            finally:
                stop_worker(worker)
            assert Message.objects.filter(account=account).count() == 60
            log_text = log_path.read_bytes()
            used_processes = b"60 messages parsed in 2 processes" in log_text
            assert used_processes == (pool == "threads"), log_text[-2000:]
            logs.append(log_text)
        # What the workers sent (analysis tasks wait in their queue: no worker consumes them here),
        # what the broker and the result backend keep, and both logs.
        client = redis.Redis(port=port)
        stored = []
        for db in (0, 1):
            client = redis.Redis(port=port, db=db)
            for key in client.keys("*"):
                kind = client.type(key)
                if kind == b"list":
                    stored += client.lrange(key, 0, -1)
                elif kind == b"string":
                    stored.append(client.get(key))
                elif kind == b"hash":
                    stored += client.hvals(key)
                elif kind == b"zset":
                    stored += client.zrange(key, 0, -1)
                elif kind == b"set":
                    stored += client.smembers(key)
    assert any(b"analysis" in item for item in stored), "the workers' own task messages are looked at"
    results = [f"{r.result}{r.task_kwargs}{r.task_args}{r.traceback}".encode() for r in TaskResult.objects.all()]
    for blob in [*stored, *results, *logs]:
        for form in key_forms(dek):
            assert form not in blob, "the key went into a Celery message, the result backend or a log"
