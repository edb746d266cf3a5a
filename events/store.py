"""Events from freshly stored mail: read each invitation's calendar part once, when it arrives.

Called inside the sync's storing transaction (events/receivers.py), so an invitation's event exists
exactly when its message does. Each message gets its own savepoint: a calendar part that breaks the
parser costs that message its card (the row says why), never the sync. Only messages the parser
marked with a calendar METHOD are looked at, so ordinary mail costs one list comprehension.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_noop

from mail.models import Attachment, Message

from . import ical
from .models import Event

log = logging.getLogger(__name__)

CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"})


def uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()


def record_invitations(messages: Iterable[Message]) -> int:
    """Create the Event of every calendar message among `messages`; returns how many were made."""
    invitations = {m.pk: m for m in messages if m.calendar_method}
    if not invitations:
        return 0
    parts: dict = {}
    for part in Attachment.objects.filter(message_id__in=list(invitations), content_type__in=CALENDAR_TYPES):
        parts.setdefault(part.message_id, part)  # the first calendar part of each message
    made = 0
    for pk, message in invitations.items():
        try:
            with transaction.atomic():
                record(message, parts.get(pk))
            made += 1
        except Exception as exc:  # noqa: BLE001 - one broken invitation must not stop the sync
            log.warning("event of message %s not recorded: %s", pk, type(exc).__name__)
    return made


def record(message: Message, part: Attachment | None) -> Event:
    event = Event(owner_id=message.owner_id, message=message, source=part, method=message.calendar_method[:20])
    if part is None or part.data is None:
        event.parse_error = gettext_noop("The invitation's calendar part is missing.")  # the card translates it
        event.save()
        return event
    try:
        parsed = ical.parse(part.data, timezone.get_default_timezone(), message.calendar_method)
    except ical.InvalidCalendar as exc:
        event.parse_error = str(exc)[:200]
        event.save()
        return event
    _fill(event, parsed)
    event.save()
    settle(event)
    return event


def _fill(event: Event, parsed: ical.ParsedEvent) -> None:
    event.method, event.sequence = parsed.method, parsed.sequence
    event.uid, event.uid_hash = parsed.uid, uid_hash(parsed.uid)
    event.starts_at, event.ends_at, event.all_day = parsed.starts_at, parsed.ends_at, parsed.all_day
    event.time_zone, event.zone_note = parsed.time_zone[:64], parsed.zone_note[:200]
    event.summary, event.location = parsed.summary, parsed.location
    event.organizer_email, event.organizer_name = parsed.organizer_email, parsed.organizer_name
    event.attendees_json = json.dumps([a.__dict__ for a in parsed.attendees], ensure_ascii=False)
    event.recurrence, event.recurrence_id = parsed.recurrence, parsed.recurrence_id
    event.cancelled = parsed.cancelled


def settle(event: Event) -> None:
    """Bring the rows of one event in line after a new one: a CANCEL of the whole event cancels the
    invitations it is not older than (whichever arrived first); of several invitations (updates)
    only the newest stays current."""
    same = Event.objects.filter(owner_id=event.owner_id, uid_hash=event.uid_hash, recurrence_id__isnull=True)
    if event.recurrence_id is not None:
        return  # about one occurrence: the card of that message says so, the series stays
    if event.method == "CANCEL":
        same.filter(method="REQUEST", sequence__lte=event.sequence).update(cancelled=True)
        return
    if event.method != "REQUEST":
        return
    newest_first = same.filter(method="REQUEST").order_by("-sequence", "-message__sort_date", "-created_at")
    current = newest_first.values_list("pk", flat=True).first()
    same.filter(method="REQUEST").exclude(pk=current).update(superseded=True)
    same.filter(pk=current).update(superseded=False)
    cancelled_up_to = same.filter(method="CANCEL").aggregate(sequence=Max("sequence"))["sequence"]
    if cancelled_up_to is not None and cancelled_up_to >= event.sequence:
        Event.objects.filter(pk=event.pk).update(cancelled=True)


def conflicts(event: Event) -> list[Event]:
    """The user's other events they accepted (or tentatively) that overlap this one."""
    if event.starts_at is None or event.ends_at is None or event.all_day or event.cancelled:
        return []
    return list(
        Event.objects.filter(
            owner_id=event.owner_id,
            answer__in=[Event.Answer.ACCEPTED, Event.Answer.TENTATIVE],
            cancelled=False,
            superseded=False,
            all_day=False,
            starts_at__lt=event.ends_at,
            ends_at__gt=event.starts_at,
        )
        .exclude(uid_hash=event.uid_hash)
        .select_related("message")
        .order_by("starts_at")[:5]
    )
