"""Similar messages and "find messages about ...": storing, fitting and querying per-user topic vectors.

The maths is in analysis/embeddings.py; this service keeps its state in the database:

* ``TopicModel``: the user's fitted projection, encrypted (like the learned classifier). ``version``
  grows with every fit; ``fit`` writes the vectors of all the user's indexed mail with it.
* ``MessageVector``: one encrypted float16 vector per message, written by the analysis pipeline for new
  mail (``store_vectors``) and by ``fit``/``catch_up`` (the ``backfill_embeddings`` command).
* A refit happens when there is no projection yet, or the user's mail has doubled since the last fit
  (``needs_fit``); small mailboxes are fitted right in the analysis task, big ones by the
  ``mail.fit_topics`` task (user id only). A PostgreSQL advisory lock keeps one fit per user at a time.

Queries decrypt the user's vectors into one numpy matrix and rank by cosine (a dot product: vectors are
L2-normalised). The decrypted matrix is kept only in this process's memory, for CACHE_SECONDS at most,
for a few users, and is revalidated on each query by one indexed query (the newest vector write; vectors
written since are decrypted and added); it is never written to Redis or disk. The owner's key is asked
for on every use, so a strict-mode user who logged out cannot be served from the cache either.

Every query is scoped to its owner: candidates are re-read from ``queries.messages_of(user)``, which
also drops expunged mail, and another user's message id is a 404 in the views before it gets here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import numpy as np
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from threadpoolctl import ThreadpoolController

from accounts import crypto, keyring
from accounts.fields import seal_fields, value_aad
from core.db.locks import lock_key, try_advisory_lock
from mail import queries
from mail.models import Message
from mail.search_tokens import SearchKey, search_key_for

from . import embeddings
from . import queries as inbox_queries
from .embeddings import NotEnoughMail, Projection
from .models import MessageVector, TopicModel
from .search import SearchFilters, apply_filters

log = logging.getLogger(__name__)

FIT_SAMPLE = 20_000  # a fit learns from at most this many (the newest) messages; all get vectors
INLINE_FIT_MAX = 2_000  # up to this many messages the analysis task fits at once; above, a task does
CHUNK = 1_000
CANDIDATES = 1_000  # "about" results considered (ranked), like the keyword search's 1,000+ cap
SIMILAR_LIMIT = 5
MIN_SCORE = 0.1  # below this cosine a message is not "about" the query at all
CACHE_SECONDS = 300
CACHE_USERS = 4
FIT_CLAIM_SECONDS = 30 * 60


class Status:
    READY = "ready"
    NOT_ENOUGH = "not_enough"  # too little mail to learn topics from yet
    LEARNING = "learning"  # enough mail, the first fit has not finished yet
    PENDING = "pending"  # this message has no vector yet (not analysed)
    NO_WORDS = "no_words"  # none of the query's words is known to the topic model


def _indexed(owner_id: int) -> QuerySet[Message]:
    """The owner's live messages that have a keyword index (the vectors' features)."""
    return Message.objects.filter(owner_id=owner_id, expunged_at__isnull=True).exclude(search_ids=[])


def _subject_ids(message: Message, key: SearchKey) -> list[int]:
    return key.query_ids(message.subject)


# --- storing vectors --------------------------------------------------------------------------------------


def store_vectors(owner_id: int, version: int, items: Iterable[tuple[UUID, np.ndarray]]) -> int:
    """Upsert encrypted vectors (row id = message id, so each is sealed for the row it lands in)."""
    dek = keyring.dek_for(owner_id)
    rows = []
    for message_id, vector in items:
        row = MessageVector(
            id=message_id, owner_id=owner_id, message_id=message_id, version=version,
            vector=embeddings.pack_vector(vector),
        )  # fmt: skip
        seal_fields(row, dek)
        rows.append(row)
    for start in range(0, len(rows), CHUNK):
        MessageVector.objects.bulk_create(
            rows[start : start + CHUNK], update_conflicts=True, unique_fields=["id"],
            update_fields=["version", "vector", "updated_at"],
        )  # fmt: skip
    return len(rows)


def load_projection(owner_id: int) -> tuple[int, Projection] | None:
    """(version, projection) of the owner's current topic model, or None (none yet, or unreadable)."""
    row = TopicModel.objects.filter(owner_id=owner_id, version__gt=0).first()
    if row is None or not row.state:
        return None
    try:
        return row.version, Projection.from_state(row.state)
    except ValueError:
        log.warning("topic model of user %s could not be loaded; it will be refitted", owner_id)
        _refit_later(row.pk)
        return None


def _refit_later(row_pk) -> None:
    """A damaged projection: make ``needs_fit`` true (the fit then takes the next version, as always)."""
    TopicModel.objects.filter(pk=row_pk).update(n_messages=0)


def vector_of(projection: Projection, message: Message, key: SearchKey) -> np.ndarray:
    """A message's vector from its stored keyword-index ids and its subject's ids."""
    return projection.vector(message.search_ids, _subject_ids(message, key))


# --- fitting ------------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    status: str  # "fitted", "not_enough", "busy"
    n_messages: int = 0
    vectors: int = 0
    seconds: float = 0.0


def _fit_lock(owner_id: int) -> AbstractContextManager[bool]:
    """One fit per user at a time (see core.db.locks)."""
    return try_advisory_lock(lock_key(f"mailhelper/topics/{owner_id}"))


def _feature_rows(messages: Iterable[Message], key: SearchKey) -> tuple[list[UUID], object]:
    ids: list[UUID] = []
    docs = []
    for message in messages:
        ids.append(message.pk)
        docs.append((message.search_ids, _subject_ids(message, key)))
    return ids, embeddings.feature_matrix(docs)


def fit(owner_id: int, progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Fit the owner's projection on their newest FIT_SAMPLE indexed messages and (re)write the vectors
    of all their indexed mail. Only ids are logged. Raises KeyringLocked for a locked strict-mode user."""
    started = time.perf_counter()
    with _fit_lock(owner_id) as acquired:
        if not acquired:
            return FitResult("busy")
        key = search_key_for(owner_id)
        newest = _indexed(owner_id).only("id", "owner_id", "search_ids", "subject").order_by("-sort_date", "-id")
        sample = newest[:FIT_SAMPLE]
        ids, x = _feature_rows(sample.iterator(chunk_size=CHUNK), key)
        try:
            projection = Projection.fit(x)
        except NotEnoughMail:
            # Remembered (version 0 = no projection), so the next try waits until the mail has doubled.
            TopicModel.objects.get_or_create(owner_id=owner_id)  # an older projection, if any, stays in use
            TopicModel.objects.filter(owner_id=owner_id, version=0).update(n_messages=len(ids))
            return FitResult("not_enough", n_messages=len(ids))
        vectors = projection.transform(x)
        with transaction.atomic():
            row, _ = TopicModel.objects.select_for_update().get_or_create(owner_id=owner_id)
            row.version += 1
            row.state, row.dims, row.n_messages = projection.to_state(), projection.dims, len(ids)
            row.fitted_at = timezone.now()
            row.save()
            written = store_vectors(owner_id, row.version, zip(ids, vectors, strict=True))
        del x, vectors
        written += catch_up(owner_id, progress=progress)  # mail beyond the sample, or analysed meanwhile
        MessageVector.objects.filter(owner_id=owner_id).exclude(version=row.version).delete()
        seconds = time.perf_counter() - started
        TopicModel.objects.filter(pk=row.pk).update(fit_seconds=seconds)
    return FitResult("fitted", n_messages=len(ids), vectors=written, seconds=seconds)


def catch_up(owner_id: int, since: date | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """Vectors for the owner's indexed messages that have none of the current version (resumable: each
    chunk is committed; a rerun continues). Returns how many were written; 0 without a projection."""
    loaded = load_projection(owner_id)
    if loaded is None:
        return 0
    version, projection = loaded
    key = search_key_for(owner_id)
    qs = _indexed(owner_id).exclude(topic_vector__version=version)
    if since:
        qs = qs.filter(sort_date__date__gte=since)
    qs = qs.only("id", "owner_id", "search_ids", "subject").order_by("pk")
    total, done, last_pk = qs.count(), 0, None
    while True:
        chunk = list((qs if last_pk is None else qs.filter(pk__gt=last_pk))[:CHUNK])
        if not chunk:
            break
        ids, x = _feature_rows(chunk, key)
        with transaction.atomic():
            store_vectors(owner_id, version, zip(ids, projection.transform(x), strict=True))
        done += len(chunk)
        last_pk = chunk[-1].pk
        if progress:
            progress(done, total)
    return done


def needs_fit(owner_id: int) -> bool:
    """No projection yet (and enough mail for one), or the mail has doubled since the last fit."""
    row = TopicModel.objects.filter(owner_id=owner_id).values("n_messages").first()
    wanted = max(embeddings.MIN_MESSAGES, 2 * (row["n_messages"] if row else 0))
    return _indexed(owner_id)[:wanted].count() >= wanted


def claim_fit(owner_id: int) -> bool:
    """True for the one caller that should start a fit now (a flag with the user id only, in Redis)."""
    return bool(cache.add(f"mailhelper:topics-fit:{owner_id}", 1, timeout=FIT_CLAIM_SECONDS))


def release_fit(owner_id: int) -> None:
    cache.delete(f"mailhelper:topics-fit:{owner_id}")


def fit_inline(owner_id: int) -> bool:
    """Whether the mailbox is small enough to fit at once in the caller (the analysis task)."""
    return not _indexed(owner_id)[INLINE_FIT_MAX:].exists()


# --- querying -----------------------------------------------------------------------------------------------


@dataclass
class _TopicIndex:
    """One user's decrypted vectors (process memory only) and projection."""

    version: int
    last_write: object  # the newest vector's updated_at when loaded (datetime or None)
    projection: Projection
    ids: list[UUID]
    positions: dict[UUID, int]
    matrix: np.ndarray  # float32, n x dims
    loaded_at: float = field(default_factory=time.monotonic)


_CACHE: OrderedDict[int, _TopicIndex] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def forget_cache() -> None:
    """Drop every decrypted matrix of this process (tests, user deletion)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _topic_index(owner_id: int) -> _TopicIndex | None:
    """The owner's vectors, from the process cache when still current; None without a projection.

    Two queries when cached (model version, newest vector write); one more for vectors written since, two
    more when (re)loading. Vectors of deleted messages may stay in the matrix until the next full load
    (CACHE_SECONDS at most): harmless, since every result is re-read from the owner's live messages.
    """
    dek = keyring.dek_for(owner_id)  # the owner's key, every time: locked users get nothing
    row = TopicModel.objects.filter(owner_id=owner_id, version__gt=0).defer("state").first()
    if row is None:
        return None
    last_write = (  # the index (owner, version, updated_at) answers this without reading the vectors
        MessageVector.objects.filter(owner_id=owner_id, version=row.version)
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )
    with _CACHE_LOCK:
        cached = _CACHE.get(owner_id)
        if cached is not None and time.monotonic() - cached.loaded_at > CACHE_SECONDS:
            cached = None
            _CACHE.pop(owner_id, None)
    if cached is not None and cached.version == row.version and cached.last_write == last_write:
        return cached
    if cached is not None and cached.version == row.version:
        grown = _grown(owner_id, dek, cached, last_write)
        if grown is not None:
            return grown
        projection = cached.projection
    else:
        try:
            projection = Projection.from_state(TopicModel.objects.get(pk=row.pk).state)
        except ValueError:
            log.warning("topic model of user %s could not be loaded; it will be refitted", owner_id)
            _refit_later(row.pk)
            return None
    rows = MessageVector.objects.filter(owner_id=owner_id, version=row.version).values_list("id", "vector")
    ids, blobs = _open_vectors(owner_id, dek, rows)
    index = _TopicIndex(
        row.version, last_write, projection, ids, {pk: n for n, pk in enumerate(ids)},
        embeddings.unpack_vectors(blobs, projection.dims),
    )  # fmt: skip
    _remember(owner_id, index)
    return index


def _open_vectors(owner_id: int, dek: bytes, rows) -> tuple[list[UUID], list[bytes]]:
    ids: list[UUID] = []
    blobs: list[bytes] = []
    for pk, sealed in rows.iterator(chunk_size=5000):
        ids.append(pk)
        blobs.append(crypto.open_sealed(dek, sealed, value_aad(owner_id, "mail.messagevector", "vector", pk)))
    return ids, blobs


def _grown(owner_id: int, dek: bytes, cached: _TopicIndex, last_write) -> _TopicIndex | None:
    """The cached index plus the vectors written since it was loaded (new mail arrives one message at a
    time; reloading all of them for each would cost the cold load every time). None when that does not
    the cache cannot be extended: the caller then reloads everything."""
    if cached.last_write is None or last_write is None or last_write < cached.last_write:
        return None
    rows = MessageVector.objects.filter(
        owner_id=owner_id, version=cached.version, updated_at__gte=cached.last_write
    ).values_list("id", "vector")
    ids, blobs = _open_vectors(owner_id, dek, rows)
    vectors = embeddings.unpack_vectors(blobs, cached.projection.dims)
    matrix, all_ids, positions = cached.matrix, list(cached.ids), dict(cached.positions)
    fresh, copied = [], False
    for n, pk in enumerate(ids):
        if pk in positions:
            if not copied:  # never change a matrix another thread may be ranking with
                matrix, copied = matrix.copy(), True
            matrix[positions[pk]] = vectors[n]  # rewritten (re-analysed): same row, new value
        else:
            positions[pk] = len(all_ids)
            all_ids.append(pk)
            fresh.append(n)
    if fresh:
        matrix = np.vstack([matrix, vectors[fresh]])
    index = _TopicIndex(cached.version, last_write, cached.projection, all_ids, positions, matrix, cached.loaded_at)
    _remember(owner_id, index)
    return index


def _remember(owner_id: int, index: _TopicIndex) -> None:
    with _CACHE_LOCK:
        _CACHE[owner_id] = index
        _CACHE.move_to_end(owner_id)
        while len(_CACHE) > CACHE_USERS:
            _CACHE.popitem(last=False)


@dataclass
class Ranking:
    """Ranked message ids of one user (best first; equal scores newest first), or why there are none."""

    status: str
    ids: list[UUID] = field(default_factory=list)
    scores: dict[UUID, float] = field(default_factory=dict)
    capped: bool = False


def _no_index_status(owner_id: int) -> str:
    if needs_fit(owner_id):  # enough mail (or twice what a failed try had): a fit is due or running
        return Status.LEARNING
    return Status.NOT_ENOUGH


_THREADS: ThreadpoolController | None = None


def _one_thread():
    """BLAS on one thread for a query's matrix-vector product: waking OpenBLAS's threads for one call on a
    busy server costs more than the product itself (3-8 ms instead of 0.3 ms for 20,000 x 96)."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1, user_api="blas")


def _rank(
    user, index: _TopicIndex, query: np.ndarray, filters: SearchFilters | None, limit: int, exclude: UUID | None
) -> Ranking:
    with _one_thread():
        scores = index.matrix @ query
    if exclude is not None and exclude in index.positions:
        scores[index.positions[exclude]] = -np.inf
    # A few extra candidates for those the live filter below drops (expunged, filtered out).
    take = min(len(scores), limit + (limit if limit < CANDIDATES else 0) + 20)
    if take == 0:
        return Ranking(Status.READY)
    top = np.argpartition(-scores, take - 1)[:take]
    top = top[scores[top] >= MIN_SCORE]
    candidates = {index.ids[i]: float(scores[i]) for i in top}
    if not candidates:
        return Ranking(Status.READY)
    # One uuid[] parameter rather than `pk__in` with 1,000 placeholders (whose SQL text alone costs ms).
    among = RawSQL('"mail_message"."id" = ANY(%s::uuid[])', (list(candidates),), output_field=BooleanField())
    live = apply_filters(
        queries.messages_of(user).filter(expunged_at__isnull=True).alias(among=among).filter(among=True),
        filters or SearchFilters(),
    ).values_list("pk", "sort_date")
    ordered = sorted(live, key=lambda r: (-round(candidates[r[0]], 3), -r[1].timestamp()))
    ids = [pk for pk, _ in ordered]
    return Ranking(Status.READY, ids[:limit], {pk: candidates[pk] for pk in ids[:limit]}, capped=len(ids) > limit)


def similar_to(user, message: Message, limit: int = SIMILAR_LIMIT, filters: SearchFilters | None = None) -> Ranking:
    """The owner's messages most similar to ``message`` (which the caller fetched scoped to ``user``)."""
    if message.owner_id != user.pk:
        raise ValueError("message of another user")
    index = _topic_index(user.pk)
    if index is None:
        return Ranking(_no_index_status(user.pk))
    position = index.positions.get(message.pk)
    if position is None:
        return Ranking(Status.PENDING)
    return _rank(user, index, index.matrix[position], filters, limit, exclude=message.pk)


def about(user, text: str, filters: SearchFilters | None = None, limit: int = CANDIDATES) -> Ranking:
    """The owner's messages ranked by how much they are about ``text`` (its words in the topic space)."""
    index = _topic_index(user.pk)
    if index is None:
        return Ranking(_no_index_status(user.pk))
    with _one_thread():
        query = index.projection.vector(search_key_for(user.pk).query_ids(text))
    if not np.any(query):
        return Ranking(Status.NO_WORDS)
    return _rank(user, index, query, filters, limit, exclude=None)


def messages_page(user, ranking: Ranking, number: object, per_page: int) -> Page:
    """A page of ranked messages, loaded as the message list loads them (one query plus tags)."""
    page = Paginator(ranking.ids, per_page).get_page(number)
    rows = {m.pk: m for m in inbox_queries.message_list(user).filter(pk__in=list(page.object_list))}
    page.object_list = [rows[pk] for pk in page.object_list if pk in rows]
    for message in page.object_list:
        message.similarity = ranking.scores.get(message.pk, 0.0)
    return page


def ranked_messages(user, ranking: Ranking) -> list[Message]:
    """All messages of a (short) ranking, in order: the "similar messages" block."""
    return list(messages_page(user, ranking, 1, max(1, len(ranking.ids))).object_list)
