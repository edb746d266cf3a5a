"""The job lifecycle (core/jobs.py): start refuses live jobs only, run records every end, the sweep fails dead ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analysis import tasks as analysis_tasks
from core import jobs
from core.models import Job
from core.stored_text import render
from core.tasks import fail_stale_jobs
from rules import tasks as rules_tasks

pytestmark = pytest.mark.django_db

KILLED_LONG_AGO = {"status": Job.Status.RUNNING, "created": timedelta(hours=3), "heartbeat": timedelta(hours=2)}


def test_a_dead_reanalysis_no_longer_swallows_the_next_request(
    alice, alice_client, make_job, django_capture_on_commit_callbacks
):
    # What a worker killed mid-run (or by the time limit) leaves: "running", and silent for hours.
    dead = make_job(alice.user, kind=Job.Kind.REANALYSE, **KILLED_LONG_AGO)

    with django_capture_on_commit_callbacks() as queued:
        response = alice_client.post(reverse("mail:reanalyse"), {"account": "", "since": ""})

    new = Job.objects.exclude(pk=dead.pk).get(owner=alice.user, kind=Job.Kind.REANALYSE)
    assert response.status_code == 302 and response.url == reverse("jobs:detail", args=[new.pk])
    assert new.status == Job.Status.QUEUED and len(queued) == 1  # its task goes out on commit
    dead.refresh_from_db()
    assert dead.status == Job.Status.FAILED and render(dead.error).startswith("lost: no sign of life")
    assert dead.finished_at is not None

    # A live job still answers a second click: that one is shown, no third job starts.
    with django_capture_on_commit_callbacks() as queued_again:
        again = alice_client.post(reverse("mail:reanalyse"), {"account": "", "since": ""})
    assert again.url == reverse("jobs:detail", args=[new.pk]) and not queued_again
    assert Job.objects.filter(owner=alice.user).count() == 2


def test_start_refuses_a_live_job_of_the_same_owner_and_kind_only(
    alice, bob, make_job, django_capture_on_commit_callbacks
):
    live = make_job(alice.user, status=Job.Status.RUNNING, created=timedelta(hours=1), heartbeat=timedelta(minutes=1))
    with django_capture_on_commit_callbacks():
        with pytest.raises(jobs.JobAlreadyActive) as refused:
            jobs.start(alice.user, Job.Kind.REANALYSE, {}, analysis_tasks.reanalyse)
        assert refused.value.job == live
        # Another kind, or another owner, is not held up by it.
        other_kind = jobs.start(alice.user, Job.Kind.RULES, {"rule_ids": [1]}, rules_tasks.run_rules_job)
        other_owner = jobs.start(bob.user, Job.Kind.REANALYSE, {"account_id": None}, analysis_tasks.reanalyse)
    assert other_kind.status == other_owner.status == Job.Status.QUEUED
    assert other_owner.params == {"account_id": None} and other_owner.owner == bob.user
    live.refresh_from_db()
    assert live.status == Job.Status.RUNNING  # a long job that keeps reporting is alive, whatever its age
    with pytest.raises(ValueError):
        jobs.start(alice.user, "re-analyse", {}, analysis_tasks.reanalyse)  # not a kind


def test_the_sweep_fails_silent_jobs_and_only_those(alice, make_job, settings):
    settings.CELERY_TASK_TIME_LIMIT = 600  # so a job may be silent for 10 min + the grace
    assert jobs.stale_after() == timedelta(minutes=10) + jobs.STALE_GRACE
    now = timezone.now()
    limit = jobs.stale_after()
    minute = timedelta(minutes=1)
    lost_in_queue = make_job(alice.user, created=limit + minute, now=now)
    waiting = make_job(alice.user, created=limit - minute, now=now)
    killed = make_job(alice.user, status=Job.Status.RUNNING, created=2 * limit, heartbeat=limit + minute, now=now)
    long_and_alive = make_job(alice.user, status=Job.Status.RUNNING, created=3 * limit, heartbeat=minute, now=now)
    # A row from before heartbeats existed: running, no heartbeat, only its age to go by.
    before_heartbeats = make_job(alice.user, status=Job.Status.RUNNING, created=limit + minute, now=now)
    finished = make_job(alice.user, status=Job.Status.SUCCESS, created=5 * limit, now=now, result="3 analysed")

    assert jobs.fail_stale(now) == 3

    status = dict(Job.objects.values_list("pk", "status"))
    assert {pk for pk, s in status.items() if s == Job.Status.FAILED} == {
        lost_in_queue.pk,
        killed.pk,
        before_heartbeats.pk,
    }
    assert status[waiting.pk] == Job.Status.QUEUED and status[long_and_alive.pk] == Job.Status.RUNNING
    assert status[finished.pk] == Job.Status.SUCCESS
    lost_in_queue.refresh_from_db()
    killed.refresh_from_db()
    assert render(lost_in_queue.error) == "lost: not started within 12 min" and render(killed.error).startswith(
        "lost: no sign"
    )
    assert jobs.fail_stale(now) == 0


def test_without_a_hard_time_limit_the_sweep_still_waits_hours(settings):
    settings.CELERY_TASK_TIME_LIMIT = None
    assert jobs.stale_after() == jobs.NO_LIMIT_STALE_AFTER


def test_work_that_raises_fails_the_job_with_the_class_name_only(alice, make_job):
    job = make_job(alice.user)

    def work(job, progress):
        progress(1, 3)
        raise KeyError("alice@example.test: the contract is attached")  # content in the message

    with pytest.raises(KeyError):  # re-raised, so Celery records the failure as well
        jobs.run(job.pk, work)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error == "KeyError"
    assert (job.done, job.total, job.result) == (1, 3, "") and job.finished_at is not None


def test_run_reports_progress_as_a_heartbeat_and_records_success(alice, make_job):
    job = make_job(alice.user, created=timedelta(minutes=5))
    seen = []

    def work(job, progress):
        seen.append(Job.objects.get(pk=job.pk))  # as the page sees it while the work runs
        progress(0, 2)
        progress(2, 2)
        seen.append(Job.objects.get(pk=job.pk))
        return "2 counted"

    assert jobs.run(job.pk, work) == {"job_id": job.pk, "status": "success", "result": "2 counted"}
    running, reported = seen
    assert running.status == Job.Status.RUNNING and running.started_at and running.heartbeat_at
    assert (reported.done, reported.total) == (2, 2) and reported.heartbeat_at > running.heartbeat_at
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCESS and job.result == "2 counted" and job.finished_at >= job.heartbeat_at


def test_a_finished_job_is_not_run_again_but_a_redelivered_running_one_is(alice, make_job):
    calls = []

    def work(job, progress):
        calls.append(job.pk)
        return "ran"

    done = make_job(alice.user, status=Job.Status.SUCCESS, result="6 analysed")
    given_up = make_job(alice.user, status=Job.Status.FAILED, error="lost: not started within 32 min")
    assert jobs.run(done.pk, work) == {"job_id": done.pk, "status": "success", "skipped": True}
    assert jobs.run(given_up.pk, work)["skipped"] and jobs.run(10**9, work)["status"] == "gone"
    assert calls == []
    given_up.refresh_from_db()
    assert given_up.status == Job.Status.FAILED  # the late task left it as the sweep did

    # A pool process that died hands its message back (reject_on_worker_lost): the job runs again.
    interrupted = make_job(alice.user, status=Job.Status.RUNNING, heartbeat=timedelta(seconds=5), done=40, total=90)
    assert jobs.run(interrupted.pk, work)["status"] == "success" and calls == [interrupted.pk]


class RefusingBroker:
    """A task whose broker is down: `delay` raises as kombu does when Redis refuses the connection."""

    def delay(self, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")


def test_a_task_that_cannot_be_queued_fails_its_job_at_once(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.start(alice.user, Job.Kind.RULES, {"rule_ids": []}, RefusingBroker())
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and render(job.error) == "not queued: ConnectionRefusedError"


def test_beat_runs_the_sweep(alice, make_job):
    from mailhelper.celery import app

    row = PeriodicTask.objects.get(task="core.fail_stale_jobs")
    assert row.enabled and row.interval.every == 5 and row.interval.period == "minutes"
    assert "core.fail_stale_jobs" in app.tasks
    make_job(alice.user, **KILLED_LONG_AGO)
    assert fail_stale_jobs() == {"failed": 1}
