"""What the message page shows of the event a message carries (None for ordinary mail)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mail.models import Message

from . import ical, store
from .models import Event


@dataclass
class EventCard:
    event: Event
    recurrence: str = ""
    conflicts: list[Event] = field(default_factory=list)


def card_for(message: Message) -> EventCard | None:
    """Only a message with a calendar METHOD can carry one, so other mail costs no query."""
    if not message.calendar_method:
        return None
    event = Event.objects.filter(owner_id=message.owner_id, message=message).select_related("source").first()
    if event is None:
        return None
    return EventCard(
        event=event,
        recurrence=ical.describe_recurrence(event.recurrence) if event.recurrence else "",
        conflicts=store.conflicts(event) if event.method == "REQUEST" else [],
    )
