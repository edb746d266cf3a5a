"""Keyword search over encrypted mail through the blind index (see mail/search_tokens.py).

The index holds keyed hashes of each message's words; a query's words are hashed with the same
per-user key (derived from the user's data key) and matched with array containment, so several
words mean AND and PostgreSQL's GIN index does the work. No word is stored in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from accounts import keyring

from . import queries
from .models import Message
from .search_tokens import SearchKey

BACKFILL_CHUNK = 200


def search_key_for(owner_id: int) -> SearchKey:
    return SearchKey.from_data_key(keyring.dek_for(owner_id))


def index_ids(message: Message, key: SearchKey) -> list[int]:
    addresses = [message.from_address, message.from_name, *message.to_addresses, *message.cc_addresses]
    return key.message_ids(message.subject, message.text_body, [a for a in addresses if a])


@dataclass
class SearchFilters:
    account_id: str | None = None
    folder_id: int | None = None
    since: date | None = None
    until: date | None = None
    tag_id: int | None = None
    unread: bool = False
    has_attachment: bool = False


def search(user, query: str, filters: SearchFilters) -> QuerySet[Message] | None:
    """Messages containing every word of the query (newest first); None if the query has no word."""
    ids = search_key_for(user.pk).query_ids(query)
    if not ids:
        return None
    # Not `search_ids__contains=ids`: with server-side binding Django sends each element of the
    # lookup's ARRAY[...] as int4, which truncates these 64-bit ids. One explicit bigint[] instead.
    contains = RawSQL('"mail_message"."search_ids" @> %s::bigint[]', (ids,), output_field=BooleanField())
    qs = (
        queries.message_list(user, tag_ids=[filters.tag_id] if filters.tag_id else None)
        .alias(has_words=contains)
        .filter(has_words=True)
    )
    return apply_filters(qs, filters, tags=False)


def apply_filters(qs: QuerySet[Message], filters: SearchFilters, tags: bool = True) -> QuerySet[Message]:
    """The search page's filters on a queryset of one user's messages (also used by topic search)."""
    if tags and filters.tag_id:
        qs = qs.filter(tag_assignments__tag_id=filters.tag_id)
    if filters.account_id:
        qs = qs.filter(account_id=filters.account_id)
    if filters.folder_id:
        qs = qs.filter(folder_id=filters.folder_id)
    if filters.since:
        qs = qs.filter(sort_date__date__gte=filters.since)
    if filters.until:
        qs = qs.filter(sort_date__date__lte=filters.until)
    if filters.unread:
        qs = qs.filter(seen=False)
    if filters.has_attachment:
        qs = qs.filter(has_attachments=True)
    return qs


def backfill(
    owner_id: int | None = None,
    since: date | None = None,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Index messages that have no index yet (or all with rebuild). Resumable: re-run continues."""
    qs = Message.objects.all()
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if since:
        qs = qs.filter(sort_date__date__gte=since)
    if not rebuild:
        qs = qs.filter(search_ids=[])
    total, done, last_pk = qs.count(), 0, None
    keys: dict[int, SearchKey | None] = {}
    while True:
        chunk_qs = qs.order_by("pk").only("id", "owner_id", "subject", "text_body", "from_address", "from_name",
                                          "to_addresses", "cc_addresses")  # fmt: skip
        if last_pk is not None:
            chunk_qs = chunk_qs.filter(pk__gt=last_pk)
        chunk = list(chunk_qs[:BACKFILL_CHUNK])
        if not chunk:
            break
        for message in chunk:
            if message.owner_id not in keys:
                keys[message.owner_id] = (
                    None if keyring.is_locked(message.owner_id) else search_key_for(message.owner_id)
                )
            key = keys[message.owner_id]
            if key is not None:
                Message.objects.filter(pk=message.pk).update(search_ids=index_ids(message, key))
        done += len(chunk)
        last_pk = chunk[-1].pk
        if progress:
            progress(done, total)
    return done
