"""The one job page for every kind (core/views.py): owner only, kind, status, progress, outcome, way back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from core.models import Job
from core.views import BACK_LINKS
from tests.plugins.accounts import verified_client

pytestmark = pytest.mark.django_db


def test_every_kind_has_a_way_back():
    assert set(BACK_LINKS) == set(Job.Kind.values)
    for _label, name in BACK_LINKS.values():
        reverse(name)  # raises NoReverseMatch for a name that does not exist


def test_a_running_job_shows_its_progress_and_keeps_polling(alice, alice_client, make_job):
    job = make_job(alice.user, kind=Job.Kind.RULES, status=Job.Status.RUNNING, heartbeat=timedelta(0), total=8, done=2)
    page = alice_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert "<h1>Rules on existing mail</h1>" in page and 'data-status="running"' in page and "2 of 8" in page
    assert f'hx-get="{reverse("jobs:progress", args=[job.pk])}"' in page
    assert f'href="{reverse("rules:list")}">Rules</a>' in page

    fragment = alice_client.get(reverse("jobs:progress", args=[job.pk])).content.decode()
    assert fragment.lstrip().startswith('<div id="job-progress"') and "<h1>" not in fragment
    assert 'hx-trigger="every 1s"' in fragment


def test_a_finished_job_shows_its_result_or_why_it_stopped_and_stops_polling(alice, alice_client, make_job):
    done = make_job(alice.user, status=Job.Status.SUCCESS, total=6, done=6, result="6 analysed")
    failed = make_job(alice.user, status=Job.Status.FAILED, total=6, done=2, error="SoftTimeLimitExceeded")

    page = alice_client.get(reverse("jobs:detail", args=[done.pk])).content.decode()
    assert "<h1>Re-analysis</h1>" in page and "finished" in page and "6 analysed" in page
    assert "hx-trigger" not in page and f'href="{reverse("mail:analysis-settings")}"' in page

    fragment = alice_client.get(reverse("jobs:progress", args=[failed.pk])).content.decode()
    assert 'data-status="failed"' in fragment and "It stopped: SoftTimeLimitExceeded" in fragment
    assert "hx-trigger" not in fragment


def test_another_users_job_is_not_found(alice, bob, make_job):
    job = make_job(alice.user)
    bob_client = verified_client(bob)
    assert bob_client.get(reverse("jobs:detail", args=[job.pk])).status_code == 404
    assert bob_client.get(reverse("jobs:progress", args=[job.pk])).status_code == 404


def test_the_job_page_needs_a_login(make_job, alice, client):
    job = make_job(alice.user)
    response = client.get(reverse("jobs:detail", args=[job.pk]))
    assert response.status_code == 302 and reverse("accounts:login") in response.url
