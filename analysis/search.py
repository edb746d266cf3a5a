"""Keyword search over encrypted mail through the blind index (see mail/search_tokens.py).

The index holds keyed hashes of each message's words; a query's words are hashed with the same
per-user key (derived from the user's data key) and matched with array containment, so several
words mean AND and PostgreSQL's GIN index does the work. No word is stored in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts import keyring
from mail.models import Message
from mail.search_tokens import SearchKey, search_key_for

from . import queries as inbox_queries

BACKFILL_CHUNK = 200


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


def search(user, query: str, filters: SearchFilters) -> SearchResults | None:
    """Messages containing every word of the query (newest first); None if the query has no word.

    Nothing runs until the paginator counts or slices the results (see :class:`SearchResults`).
    """
    ids = search_key_for(user.pk).query_ids(query)
    if not ids:
        return None
    return SearchResults(user, ids, filters)


# How the matches are found (see SearchResults): walking (owner, -sort_date) costs ~2 us a row,
# whatever the words (each row's search_ids is read and compared); the GIN index costs what the
# rarest word's posting list costs (~25 ms for a word in each of 100,000 messages) plus one heap
# visit per match returned. A sample of the newest messages tells which of the two is cheaper.
SAMPLE = 250  # newest messages of the scope tested first (~0.5 ms)
WALK = 5000  # the most newest messages walked to fill the capped count (~7 ms)
DEFAULT_CAP = 1000


class SearchResults:
    """The matches of one keyword search, counted up to a cap and sliced by the paginator.

    One query over the whole mailbox is not planned well for both common and rare words: for the
    capped count PostgreSQL walked (owner, -sort_date) testing every row until it had cap + 1
    matches, which for a word in 4% of the mail meant 25,000 rows (40-80 ms) where the GIN index
    answers in ~3 ms, while for a word in most messages the walk is the cheap plan. So the matches
    are found in steps of bounded cost, chosen from what the first step saw, and a page is then
    fetched by primary key:

    1. the newest ``sample`` messages of the scope (filters applied) are tested in date order
       (:func:`_recent_matches`); if that was the whole scope, its matches are all the matches;
    2. if the sample's rate of matches says cap + 1 matches are within the newest ``walk``
       messages, those are walked the same way; if they hold cap + 1 matches, the count is "cap+"
       and every page the paginator can show is among them (``path == "recent"``);
    3. otherwise the GIN index finds up to cap + 1 matches in any order (:func:`_indexed_matches`):
       at most ``cap`` are all the matches (``path == "index"``); more make the count
       "cap+", and a page beyond the newest matches already found is one ordered query, as before,
       planned by PostgreSQL (``path == "index+query"``).

    Every step orders in SQL exactly as the list does: sort_date descending, then id descending.
    """

    ordered = True  # for Django's Paginator, which warns about unordered object lists

    def __init__(self, user, ids: list[int], filters: SearchFilters, sample: int = SAMPLE, walk: int = WALK) -> None:
        self.user = user
        self.ids = ids
        self.filters = filters
        self.sample = sample
        self.walk = walk
        self.path = ""
        self._cap: int | None = None
        self._count = 0
        self._known: list[str] = []  # ids of the newest matches, in order
        self._complete = False  # whether _known holds every match

    def capped_count(self, cap: int = DEFAULT_CAP) -> int:
        """Number of matches, counted up to cap + 1 (mail.paging.CappedPaginator asks this)."""
        self._resolve(cap)
        return self._count

    def __getitem__(self, key: slice) -> QuerySet[Message] | list[Message]:
        """One page (a slice) of the matches as list rows, newest first.

        Unevaluated, so that the page reads it as values (analysis.rows.message_rows) rather than
        building model instances it throws away."""
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("SearchResults supports slices without a step only")
        self._resolve(self._cap if self._cap is not None else DEFAULT_CAP)
        start = key.start or 0
        stop = key.stop if key.stop is not None else max(self._count, len(self._known))
        if stop <= start:
            return []
        if self._complete or stop <= len(self._known):
            return self._listing().filter(pk__in=self._known[start:stop])
        return self._listing().alias(has_words=_contains(self.ids)).filter(has_words=True)[start:stop]

    def _scope(self) -> QuerySet[Message]:
        """The user's live messages with the filters, without the words and without list columns."""
        return apply_filters(Message.objects.filter(owner=self.user, expunged_at__isnull=True), self.filters)

    def _listing(self) -> QuerySet[Message]:
        """The scope as list rows (only() columns, related rows, tag prefetch), newest first."""
        tag_ids = [self.filters.tag_id] if self.filters.tag_id else None
        return apply_filters(inbox_queries.message_list(self.user, tag_ids=tag_ids), self.filters, tags=False)

    def _resolve(self, cap: int) -> None:
        """Find the matches (steps 1-3 of the class docstring), once per cap."""
        if self._cap == cap:
            return
        self._cap = cap
        known, whole_scope = _recent_matches(self._scope(), self.ids, self.sample, cap + 1)
        if not whole_scope and len(known) * self.walk >= (cap + 1) * self.sample:
            known, whole_scope = _recent_matches(self._scope(), self.ids, self.walk, cap + 1)
        if whole_scope or len(known) > cap:
            self.path, self._count, self._known, self._complete = "recent", len(known), known, len(known) <= cap
            return
        indexed = _indexed_matches(self._scope(), self.ids, cap + 1)
        if len(indexed) <= cap:
            self.path, self._count, self._known, self._complete = "index", len(indexed), indexed, True
            return
        self.path, self._count, self._known, self._complete = "index+query", len(indexed), known, False


def _contains(ids: list[int]) -> RawSQL:
    """``search_ids @> ids`` as one explicit bigint[] parameter.

    Not ``search_ids__contains=ids``: with server-side binding Django sends each element of the
    lookup's ARRAY[...] as int4, which truncates these 64-bit ids.
    """
    return RawSQL('"mail_message"."search_ids" @> %s::bigint[]', (ids,), output_field=BooleanField())


def _recent_matches(scope: QuerySet[Message], ids: list[int], window: int, limit: int) -> tuple[list[str], bool]:
    """Ids of up to ``limit`` matches among the newest ``window`` messages of the scope, newest
    first, and whether those were all of the scope's messages (then these are all the matches).

    The LIMIT of the inner query keeps PostgreSQL from reaching for the GIN index (a word in every
    message would cost it the whole posting list) and bounds the walk; the outer LIMIT stops it as
    soon as enough matches are found. The row numbered ``window``, match or not, comes back too:
    it tells that the window was full. Ids come as text (ordered as uuids: the alias ``pk`` keeps
    ``ORDER BY id`` on the column): 1,000 uuids and dates cost ~4 ms to load into Python objects,
    text ~0.4 ms, and only a page's worth is ever looked up.
    """
    inner = scope.order_by("-sort_date", "-id").values_list("id", "sort_date", "search_ids")[:window]
    sql, params = inner.query.sql_with_params()  # Django's SQL, values kept apart as parameters
    numbered = "row_number() OVER (ORDER BY sort_date DESC, id DESC) AS n"
    tested = f"SELECT id, sort_date, search_ids @> %s::bigint[] AS hit, {numbered} FROM ({sql}) AS recent"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id::text AS pk, hit, n FROM ({tested}) AS tested"  # noqa: S608
            " WHERE hit OR n = %s ORDER BY sort_date DESC, id DESC LIMIT %s",
            (ids, *params, window, limit + 1),
        )
        rows = cursor.fetchall()
    matches = [pk for pk, hit, _ in rows if hit][:limit]
    return matches, not any(n == window for *_, n in rows)


def _indexed_matches(scope: QuerySet[Message], ids: list[int], limit: int) -> list[str]:
    """Ids of up to ``limit`` matches found through the GIN index, sorted newest first.

    Which matches, when there are more than ``limit``, is arbitrary: the caller only counts them
    then. Only called when the newest mail showed the words are not common, where the GIN bitmap is
    the cheap plan: well under 1 us per posting plus one heap visit per match returned. Left alone,
    the planner often chose a sequential or (owner, -sort_date) scan with LIMIT instead (40 ms
    against 3 ms for a word in 4% of 100,000 messages): it prices the row-by-row containment test
    like one integer comparison, while it reads and compares an array of ~150 ids. Hence the
    planner settings for this one query (and JIT off: it only adds compile time to milliseconds).
    """
    inner = scope.alias(has_words=_contains(ids)).filter(has_words=True).order_by()
    sql, params = inner.values_list("id", "sort_date")[:limit].query.sql_with_params()
    ordered = f"SELECT id::text AS pk FROM ({sql}) AS found ORDER BY sort_date DESC, id DESC"  # noqa: S608 (Django's SQL)
    with _planner_settings(enable_seqscan="off", enable_indexscan="off", jit="off"), connection.cursor() as cursor:
        cursor.execute(ordered, params)
        return [pk for (pk,) in cursor.fetchall()]


@contextmanager
def _planner_settings(**settings: str) -> Iterator[None]:
    """Planner settings for the queries inside the block only.

    SET LOCAL in a transaction of its own, whose end drops them. Inside an outer transaction that
    is a savepoint, whose release would keep them: there the previous values are read first and put
    back at the end (on an error, the savepoint's rollback undoes them).
    """
    names, nested = list(settings), connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if nested:
                cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
                previous = dict(zip(names, cursor.fetchone(), strict=True))
            _set_local(cursor, settings)
        yield
        if nested:
            with connection.cursor() as cursor:
                _set_local(cursor, previous)


def _set_local(cursor, values: dict[str, str]) -> None:
    cursor.execute(
        "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
        [item for pair in values.items() for item in pair],
    )


def apply_filters(qs: QuerySet[Message], filters: SearchFilters, tags: bool = True) -> QuerySet[Message]:
    """The search page's filters on a queryset of one user's messages (also used by topic search)."""
    if tags and filters.tag_id:
        qs = qs.filter(tag_assignments__tag_id=filters.tag_id)
    if filters.account_id:
        qs = qs.filter(account_id=filters.account_id)
    if filters.folder_id:
        qs = qs.filter(folder_id=filters.folder_id)
    if filters.since:
        qs = qs.filter(sort_date__gte=_day_start(filters.since))
    if filters.until and filters.until < date.max:
        qs = qs.filter(sort_date__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.unread:
        qs = qs.filter(seen=False)
    if filters.has_attachment:
        qs = qs.filter(has_attachments=True)
    return qs


def _day_start(day: date) -> datetime:
    """The first instant of ``day`` in the current time zone.

    A range on sort_date itself, not ``sort_date__date``: the date of a timestamp is computed per
    row, so no index can bound it, and a search of last year's mail walked all the newer mail
    (130 ms at the median on 100,000 messages). Same days as ``__date`` in the same time zone.
    """
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


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
