"""The user's list senders: who sends them list mail, how much, and how much of it they read.

A sender counts when any of its mail is list mail: it has a List-Unsubscribe or List-Id header, or the
analysis put it in the newsletter category. One GROUP BY over the owner's messages per page (the
(owner, from_address) rows come from the message table's indexes), not a query per sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q, QuerySet

from mail.models import Message

from .models import Unsubscription

LIST_MAIL = Q(has_list_unsubscribe=True) | ~Q(list_id="") | Q(analysis__final_category="newsletter")


@dataclass
class Sender:
    address: str
    name: str
    messages: int
    unread: int
    last: datetime
    can_unsubscribe: bool
    unsubscription: Unsubscription | None = None

    @property
    def read_percent(self) -> int:
        return round(100 * (self.messages - self.unread) / self.messages) if self.messages else 0


def list_senders(owner_id: int) -> QuerySet:
    """Rows of (from_address, name, messages, unread, last, can_unsubscribe), the busiest sender first."""
    listed = (
        Message.objects.filter(owner_id=owner_id, expunged_at__isnull=True)
        .filter(LIST_MAIL)
        .exclude(from_address="")
        .values_list("from_address", flat=True)
    )
    return (
        Message.objects.filter(owner_id=owner_id, expunged_at__isnull=True, from_address__in=listed)
        .values("from_address")
        .annotate(
            name=Max("from_name"),
            messages=Count("pk"),
            unread=Count("pk", filter=Q(seen=False)),
            last=Max("sort_date"),
            unsubscribable=Count("pk", filter=Q(has_list_unsubscribe=True)),
        )
        .order_by("-messages", "from_address")
    )


def senders_of(owner_id: int, rows: list[dict]) -> list[Sender]:
    """The page's rows as Senders, each with the user's latest unsubscription from it (one query)."""
    addresses = [row["from_address"] for row in rows]
    latest: dict[str, Unsubscription] = {}
    for unsubscription in Unsubscription.objects.filter(owner_id=owner_id, sender__in=addresses).order_by("created_at"):
        latest[unsubscription.sender] = unsubscription
    return [
        Sender(
            address=row["from_address"],
            name=row["name"] or "",
            messages=row["messages"],
            unread=row["unread"],
            last=row["last"],
            can_unsubscribe=row["unsubscribable"] > 0,
            unsubscription=latest.get(row["from_address"]),
        )
        for row in rows
    ]
