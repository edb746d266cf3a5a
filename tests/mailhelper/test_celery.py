"""The ping task round-trips through a real worker process, broker and result store."""

import time

import pytest
from django_celery_results.models import TaskResult

from mailhelper.tasks import ping


@pytest.mark.django_db(transaction=True)
def test_ping_round_trips_through_a_real_worker(celery_worker):
    result = ping.delay()
    assert result.get(timeout=20) == "pong"
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS" and stored.task_name == "mailhelper.tasks.ping"
    assert stored.worker.startswith("test-")


def test_celery_is_configured_for_reliable_delivery():
    from mailhelper.celery import app

    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.result_backend == "django-db"
    assert conf.beat_scheduler == "mail.beat:AccountSyncScheduler"
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit


def _sessions_started() -> int:
    """Connections ever opened to the test database (PostgreSQL's cumulative statistics)."""
    from django.db import connection

    time.sleep(1.2)  # backends report their statistics at most once a second
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_between_tasks(celery_worker):
    """Celery's fixup would open a PostgreSQL backend for every task (10,000 syncs every 5 minutes)."""
    ping.delay().get(timeout=20)  # each pool process that takes a task may open its connection once
    ping.delay().get(timeout=20)
    before = _sessions_started()
    for _ in range(8):
        assert ping.delay().get(timeout=20) == "pong"
    assert _sessions_started() - before <= 1  # at most a pool process that had not run a task yet


@pytest.mark.django_db(transaction=True)
def test_a_task_after_its_connection_was_killed_gets_a_new_one(celery_worker):
    """A kept connection that PostgreSQL dropped (restart, failover) is noticed before the next task."""
    from django.db import connection

    assert ping.delay().get(timeout=20) == "pong"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the worker's kept connection
    for _ in range(4):
        result = ping.delay()
        assert result.get(timeout=20) == "pong"
        assert TaskResult.objects.get(task_id=result.id).status == "SUCCESS"
