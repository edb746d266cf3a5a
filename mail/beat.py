"""The installation's beat scheduler: django-celery-beat's, with account syncs sent from one query.

Beat is run with `-S mail.beat:AccountSyncScheduler` (deploy/, Procfile, settings). Every row that is
not an account sync (sweeps, digests, an operator's own tasks) is scheduled by DatabaseScheduler as
before; the account sync rows, one per account, are left out of its in-memory schedule and sent by
mail.sync_dispatch instead, so that beat's work does not grow with the number of accounts.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, InterfaceError, close_old_connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from . import sync_dispatch
from .schedules import SYNC_TASK

logger = logging.getLogger(__name__)

#: The shortest pause between two dispatch passes: at 10,000 accounts on 5 minutes one falls due every
#: 30 ms, and a pass per second sends them at most a second late for two small queries a second.
RESOLUTION_SECONDS = 1.0


class AccountSyncScheduler(DatabaseScheduler):
    """DatabaseScheduler that sends the account syncs from mail.sync_dispatch."""

    _next_dispatch = 0.0

    def enabled_models_qs(self):
        return super().enabled_models_qs().exclude(pk__in=sync_dispatch.dispatched_rows().values("pk"))

    def tick(self, *args, **kwargs) -> float:
        wait = super().tick(*args, **kwargs)
        if time.monotonic() >= self._next_dispatch:
            self._next_dispatch = time.monotonic() + self._dispatch()
        return max(0.0, min(wait, self._next_dispatch - time.monotonic()))

    def _dispatch(self) -> float:
        """Send what is due; returns how long to wait before the next pass."""
        try:
            close_old_connections()  # a connection PostgreSQL dropped while beat slept
            sent = sync_dispatch.send_due(self._send)
            first = sync_dispatch.next_due_at()
        except (DatabaseError, InterfaceError):
            logger.exception("Account syncs could not be dispatched; retrying")
            return self.max_interval
        if sent:
            logger.info("Sent %d account syncs", sent)
        if first is None:
            return self.max_interval
        until = (first - timezone.now()).total_seconds()
        return min(max(until, RESOLUTION_SECONDS), self.max_interval)

    def _send(self, kwargs: dict, name: str) -> None:
        self.app.send_task(SYNC_TASK, kwargs=kwargs, headers={"periodic_task_name": name}, producer=self.producer)
