"""Work is routed to queues by kind, so a send never waits behind a backlog of syncs, and workers
share nothing but PostgreSQL and Redis, so they can run on several machines."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from tests.plugins.celery_worker import ROOT, private_redis, service_env, start_private_worker, stop_worker
from tests.plugins.mailservers import free_port

BACKGROUND = {"sync", "analysis", "celery"}


def _queue_of(task_name: str) -> str:
    from mailhelper.celery import app

    return app.amqp.router.route({}, task_name)["queue"].name


def _project_tasks() -> list[str]:
    from mailhelper.celery import app

    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def test_every_task_goes_to_a_declared_queue_and_the_users_writes_to_their_own():
    from mailhelper.celery import app

    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == BACKGROUND | {"send"}
    tasks = _project_tasks()
    assert {"mail.sync_account", "mail.send_draft", "mail.write_back", "mail.analyse_account"} <= set(tasks)
    assert {name: _queue_of(name) for name in tasks if _queue_of(name) not in declared} == {}
    assert _queue_of("mail.sync_account") == "sync" and _queue_of("mail.analyse_account") == "analysis"
    assert _queue_of("mail.send_draft") == _queue_of("mail.write_back") == "send"


def _queues_named_by(text: str) -> list[set[str]]:
    """The -Q lists of every worker command in a deployment file (YAML lists are joined first)."""
    flat = re.sub(r"\n\s*-\s*", " ", text)
    return [set(found.split(",")) for found in re.findall(r"(?:-Q|--queues)[ =\"']+([\w,]+)", flat)]


@pytest.mark.parametrize(
    "path",
    ["Procfile", "deploy/compose.yml", "deploy/systemd/mailhelper-worker.service"],
)
def test_each_deployment_consumes_every_queue_with_sends_apart(path):
    """A deployment whose workers leave a queue out would queue that work for ever."""
    files = [ROOT / path]
    if path.startswith("deploy/systemd"):
        files.append(ROOT / "deploy/systemd/mailhelper-worker-send.service")
        files.append(ROOT / "deploy/systemd/mailhelper-worker-sync.service")
    workers = [q for file in files for q in _queues_named_by(file.read_text())]
    assert workers, f"{path} names no queues"
    assert set().union(*workers) == BACKGROUND | {"send"}
    assert any(q == {"send"} for q in workers), f"{path}: sends need a worker of their own"


@pytest.mark.parametrize(
    "path",
    ["Procfile", "deploy/compose.yml", "deploy/systemd/mailhelper-worker-sync.service"],
)
def test_the_sync_queue_has_a_thread_pool_worker_of_its_own(path):
    """Prefork children are daemonic and may not start processes: the worker of the sync queue runs
    threads, so a large first sync can parse in processes (mail/sync_pool.py)."""
    text = re.sub(r"\n\s*-\s*", " ", (ROOT / path).read_text())
    commands = [c for c in re.split(r"\n(?=\S|  [\w-]+:)", text) if re.search(r"(?:-Q|--queues)[ =\"']+sync\b", c)]
    assert len(commands) == 1, f"{path}: one worker command for the sync queue"
    assert re.search(r"(?:-Q|--queues)[ =\"']+sync(?:[\s\"']|$)", commands[0]), f"{path}: sync alone"
    assert re.search(r"--pool[ =]threads", commands[0]), f"{path}: the sync worker runs --pool threads"


@pytest.mark.django_db(transaction=True)
def test_a_send_does_not_wait_behind_syncs_and_workers_share_only_postgres_and_redis(tmp_path, alice):
    """A backlog of 200 syncs waits in its queue while the send worker takes the user's write at
    once; the background worker, under another host name, then drains the backlog. Each worker
    runs in an empty directory of its own and leaves it empty: nothing but the database and the
    broker is shared, so they can run on different machines."""
    import redis

    from mail.models import MailAccount
    from mailhelper.celery import app

    account = MailAccount.objects.create(
        owner=alice.user, name="q", email_address="q@example.test", imap_host="127.0.0.1", imap_username="q"
    )
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    env = {**service_env(), "CELERY_BROKER_URL": broker, "REDIS_URL": f"redis://127.0.0.1:{port}/1"}
    env["PYTHONPATH"] = str(ROOT)
    homes = {name: tmp_path / name for name in ("host-a", "host-b")}
    for home in homes.values():
        home.mkdir()
    workers = []
    with private_redis(port):
        try:
            with app.connection_for_write(broker) as conn:
                backlog = [app.send_task("mail.settle_stale_sync_runs", connection=conn).id for _ in range(200)]
                send = app.send_task("mail.write_back", kwargs={"account_id": str(account.pk)}, connection=conn)
            workers.append(_worker(tmp_path, env, homes["host-b"], ["send"], "send@host-b"))
            assert _result(send.id, tmp_path / "send@host-b.log").worker == "send@host-b"
            assert redis.Redis(port=port).llen("sync") == len(backlog), "the syncs waited in their own queue"

            workers.append(_worker(tmp_path, env, homes["host-a"], sorted(BACKGROUND), "bg@host-a"))
            assert {_result(task_id, tmp_path / "bg@host-a.log").worker for task_id in backlog} == {"bg@host-a"}
        finally:
            for worker in workers:
                stop_worker(worker)
    assert [p.name for home in homes.values() for p in home.iterdir()] == [], "a worker wrote a file of its own"


def _worker(tmp_path: Path, env: dict[str, str], home: Path, queues: list[str], hostname: str):
    return start_private_worker(tmp_path / f"{hostname}.log", {**env, "HOME": str(home)}, queues, hostname, home)


def _result(task_id: str, log: Path, timeout: float = 60) -> TaskResult:
    deadline = time.monotonic() + timeout
    while (result := TaskResult.objects.filter(task_id=task_id, status="SUCCESS").first()) is None:
        assert time.monotonic() < deadline, f"task {task_id} did not succeed:\n{log.read_text()[-2000:]}"
        time.sleep(0.05)
    return result
