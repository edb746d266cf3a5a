"""Snooze and follow-up reminders: times per message, dispatched by ONE beat row (mail.wake_due, every
minute), never a beat row per message: 10,000 snoozed messages cost beat nothing.

* Snoozed: the message leaves the open lists and the matrix until its time. When it wakes it is unread
  again and, if it was moved meanwhile (archived on the phone, filed by a rule), moved back to the inbox
  through the outbox, so it comes back where the user looks, here and on the server.
* Follow-up ("remind me if nobody answers by"): on mail the user sent. When the time comes and no answer
  arrived (a later message of the conversation from someone else), the message is flagged, here and on
  the server; an answer that arrived in time just clears the reminder.
* Waking takes due rows with FOR UPDATE SKIP LOCKED in batches: two dispatchers (a slow minute overlapping
  the next) never wake one message twice, and a failing message does not hold up the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from . import actions
from .models import Folder, Message, PendingAction
from .replies import own_addresses

log = logging.getLogger(__name__)
BATCH = 500
Kind = PendingAction.Kind


class SnoozeError(ValueError):
    """The time cannot be used; the text says why, fit for the user."""


@dataclass
class Woken:
    snoozed: int = 0
    reminded: int = 0
    answered: int = 0


PRESETS = {"later": "In 3 hours", "tomorrow": "Tomorrow at 8:00", "next_week": "Next Monday at 8:00"}


def preset(name: str, now: datetime | None = None) -> datetime:
    """The time a snooze button stands for, in the current time zone (8:00 is the user's morning)."""
    now = timezone.localtime(now or timezone.now())
    if name == "later":
        return now + timedelta(hours=3)
    morning = now.replace(hour=8, minute=0, second=0, microsecond=0)
    if name == "tomorrow":
        return morning + timedelta(days=1)
    if name == "next_week":
        return morning + timedelta(days=7 - now.weekday())
    raise SnoozeError(gettext("Choose when the message should come back."))


def snooze(message: Message, until: datetime) -> None:
    if until <= timezone.now():
        raise SnoozeError(gettext("Choose a time in the future."))
    Message.objects.filter(pk=message.pk).update(snoozed_until=until)
    message.snoozed_until = until


def unsnooze(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(snoozed_until=None)
    message.snoozed_until = None


def set_follow_up(message: Message, when: datetime | None) -> None:
    if when is not None and when <= timezone.now():
        raise SnoozeError(gettext("Choose a time in the future."))
    if when is not None and message.from_address.lower() not in own_addresses(message.owner_id):
        raise SnoozeError(gettext("Reminders are for mail you sent."))
    Message.objects.filter(pk=message.pk).update(follow_up_at=when)
    message.follow_up_at = when


def answers_to(message_ref=None) -> QuerySet[Message]:
    """Later messages of the same conversation from someone other than the sender (OuterRef-able)."""
    ref = message_ref or OuterRef
    return Message.objects.filter(
        owner_id=ref("owner_id"), thread_key=ref("thread_key"), sort_date__gt=ref("sort_date"), expunged_at__isnull=True
    ).exclude(from_address__iexact=ref("from_address"))


def wake_due(now: datetime | None = None) -> Woken:
    """Wake every snoozed message and fire every follow-up whose time has come. Returns the counts."""
    now = now or timezone.now()
    woken = Woken()
    while _wake_batch(now, woken) or _remind_batch(now, woken):
        pass
    return woken


def _apply(message: Message, kind: str, target: Folder | None = None) -> None:
    """Through the outbox like a click; where the account cannot (POP3), the change stays here."""
    try:
        actions.apply([message], kind, target)
    except actions.ActionError:
        if kind in (Kind.MARK_UNREAD, Kind.FLAG):
            field = "seen" if kind == Kind.MARK_UNREAD else "flagged"
            Message.objects.filter(pk=message.pk).update(**{field: kind == Kind.FLAG})


def _wake_batch(now: datetime, woken: Woken) -> int:
    with transaction.atomic():
        due = list(
            Message.objects.filter(snoozed_until__lte=now)
            .select_related("account", "folder")
            .select_for_update(skip_locked=True, of=("self",))[:BATCH]
        )
        for message in due:
            Message.objects.filter(pk=message.pk).update(snoozed_until=None)
            if message.seen:
                _apply(message, Kind.MARK_UNREAD)
            if message.expunged_at is None and not message.account.is_pop3:
                inbox = message.account.folders.filter(special_use=Folder.SpecialUse.INBOX).first()
                if inbox is not None and message.folder_id != inbox.pk:
                    _apply(message, Kind.MOVE, inbox)
        woken.snoozed += len(due)
    return len(due)


def _remind_batch(now: datetime, woken: Woken) -> int:
    with transaction.atomic():
        due = list(
            Message.objects.filter(follow_up_at__lte=now)
            .annotate(answered_since=Exists(answers_to()) & ~Q(thread_key=""))
            .select_related("account", "folder")
            .select_for_update(skip_locked=True, of=("self",))[:BATCH]
        )
        for message in due:
            Message.objects.filter(pk=message.pk).update(follow_up_at=None)
            if message.answered_since:
                woken.answered += 1
                continue
            if not message.flagged:
                _apply(message, Kind.FLAG)
            woken.reminded += 1
    return len(due)
