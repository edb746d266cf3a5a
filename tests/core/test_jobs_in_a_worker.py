"""Jobs run by a real Celery worker: to success with progress, and to failure with the reason on the row."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django_celery_results.models import TaskResult

from core.models import Job
from core.stored_text import render
from rules.models import Rule, RuleLog
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db(transaction=True)  # the worker sees committed rows only


def finished(job: Job, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job.status} after {timeout}s")


def test_a_worker_runs_rules_on_existing_mail_to_success_with_progress(
    celery_worker, dovecot, imap_user, alice, alice_client
):
    account = create_account(alice.user, imap_user, dovecot)
    for n in range(5):
        dovecot.deliver(imap_user, make_raw(n))
    run_sync(account)
    rule = Rule.objects.create(
        owner=alice.user, name="numbered", order=1,
        definition={"match": "all", "conditions": [{"field": "subject", "op": "contains", "value": "number"}],
                    "actions": [{"type": "set_urgency", "value": 3}]},
    )  # fmt: skip

    response = alice_client.post(reverse("rules:run", args=[rule.pk]))
    job = Job.objects.get(owner=alice.user, kind=Job.Kind.RULES)
    assert response.url == reverse("jobs:detail", args=[job.pk])

    job = finished(job)
    assert job.status == Job.Status.SUCCESS, job.error
    assert (job.done, job.total) == (5, 5) and render(job.result) == "Rule applications: 5" and not job.error
    assert job.started_at <= job.heartbeat_at <= job.finished_at
    assert RuleLog.objects.filter(rule=rule).count() == 5


def test_a_job_that_raises_in_the_worker_is_failed_and_celery_records_it(celery_worker, alice, alice_client):
    # A date the form would not send: the work raises ValueError in the worker.
    response = alice_client.post(reverse("mail:reanalyse"), {"account": "", "since": "last tuesday"})
    job = Job.objects.get(owner=alice.user, kind=Job.Kind.REANALYSE)
    assert response.url == reverse("jobs:detail", args=[job.pk])

    job = finished(job)
    assert job.status == Job.Status.FAILED and job.error == "ValueError" and job.finished_at
    deadline = time.monotonic() + 10
    while not TaskResult.objects.filter(task_name="mail.reanalyse", status="FAILURE").exists():
        assert time.monotonic() < deadline, "Celery recorded no failure for the task"
        time.sleep(0.2)
    page = alice_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert "It stopped: ValueError" in page and "last tuesday" not in page
