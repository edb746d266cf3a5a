"""What a successful sync leaves for other tasks: older mail to fetch, an outbox that waited too long.

Both are asked in one query because every successful sync asks, for every account, every interval
(bench/fanout.py: 10,000 accounts every 5 minutes); the task queues what the answer says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Exists

from . import actions, backfill
from .models import MailAccount


@dataclass(frozen=True)
class FollowUps:
    backfill: bool  # folders with older mail still to fetch (mail/backfill.py)
    write_back: bool  # changes made here, waiting for the server longer than a queued task takes


def after_sync(account_id, stale_outbox: timedelta) -> FollowUps:
    """For an account that is gone, nothing to follow up."""
    row = (
        MailAccount.objects.filter(pk=account_id)
        .values(
            backfill=Exists(backfill.pending_folders(account_id)),
            write_back=Exists(actions.pending_actions(account_id, older_than=stale_outbox)),
        )
        .first()
    )
    return FollowUps(**row) if row else FollowUps(backfill=False, write_back=False)
