"""Job rows in the states a task leaves them in, including the ones a killed worker leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core.models import Job

MakeJob = Callable[..., Job]


@pytest.fixture
def make_job(db) -> MakeJob:
    """make_job(owner, status=..., created=<age>, heartbeat=<age or None>): a row as it would be left.

    Ages are timedeltas before `now` (default: the real now). created_at is auto_now_add, so the
    ages are written with an UPDATE after the insert, as time passing would have written them.
    """

    def make(
        owner,
        *,
        kind: str = Job.Kind.REANALYSE,
        status: str = Job.Status.QUEUED,
        created: timedelta = timedelta(0),
        heartbeat: timedelta | None = None,
        now: datetime | None = None,
        **fields,
    ) -> Job:
        now = now or timezone.now()
        job = Job.objects.create(owner=owner, kind=kind, status=status, **fields)
        times = {"created_at": now - created}
        if heartbeat is not None:
            times.update(started_at=now - created, heartbeat_at=now - heartbeat)
        Job.objects.filter(pk=job.pk).update(**times)
        job.refresh_from_db()
        return job

    return make
