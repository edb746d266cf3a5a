"""The ping task round-trips through a real worker process, broker and result store."""

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
