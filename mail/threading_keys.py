"""Thread keys that are safe to store in a plain column, and the subject fallback for broken clients.

The parser keys a conversation by its root Message-ID, or, for mail without any id, by the
normalised subject ("subject:<text>"). A subject must not be stored in clear, so that fallback is
replaced by a keyed hash under the owner's search key: equal subjects of one user still group,
and the column reveals no words.

Some clients reply without In-Reply-To and References ("Re: Budget" with nothing else). The parser
can only key such a reply by its own Message-ID, which makes it a conversation of one. To join it
to "Budget", every message also stores ``subject_hash``: a keyed hash of its normalised subject
(domain-separated from the search index's word ids, so it cannot be matched against them). A
"header-less reply" (reply prefix in the subject, no In-Reply-To, no References) then takes the
thread key of the latest earlier message of the same owner with the same subject hash, within
``SUBJECT_WINDOW``. What the database can see: which of one user's messages share a normalised
subject, as it already could for id-less mail; no words, nothing linking two users.

A generic subject links nothing (mail/generic_subjects.py: "", "Re:", "(no subject)", "(kein
Betreff)", "untitled" ...): strangers share those, and a synced corpus showed 13 unrelated messages
as one conversation. Such a subject hashes to NO_SUBJECT, so no header-less reply joins by it, and
an id-less message with it gets the empty thread key, which every reader takes as "a conversation
of its own" (mail/queries.py). Both rules live where every stored value passes through
(`storable_thread_key`, `subject_hash`), so a generic "subject:" key from the parser is never stored.
Mail stored before this rule keeps its keys until `manage.py backfill_threads --all` recomputes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta

from .generic_subjects import is_generic_subject
from .parsing import normalize_subject
from .search_tokens import SearchKey

SUBJECT_PREFIX = "subject:"
#: A header-less reply joins a conversation whose latest message is at most this old; older
#: same-subject mail ("Re: Hello" two years later) is more likely a new conversation.
SUBJECT_WINDOW = timedelta(days=120)
#: Messages of one subject considered when relinking (newest first); bounds the work for subjects
#: that recur a lot (a weekly report), where only the recent ones can be within the window anyway.
GROUP_LIMIT = 200
BACKFILL_CHUNK = 200
_HASH_DOMAIN = "\x00thread-subject\x00"  # tokens never contain NUL: no collision with word ids


def storable_thread_key(parsed_key: str, key: SearchKey) -> str:
    """The parser's key as stored: a subject key becomes a keyed hash, or "" (alone) when generic."""
    if parsed_key.startswith(SUBJECT_PREFIX):
        normalised = parsed_key[len(SUBJECT_PREFIX) :]
        if is_generic_subject(normalised):
            return ""
        return f"{SUBJECT_PREFIX}{key.token_id(normalised) & 0xFFFFFFFFFFFFFFFF:016x}"
    return parsed_key


#: Stored for a message whose subject is empty or generic after removing prefixes: "computed, joins nothing".
NO_SUBJECT = 0


def subject_hash(subject: str, key: SearchKey) -> int:
    """Keyed 64-bit hash of the normalised subject ("Re: AW: Budget" -> "budget"); NO_SUBJECT if generic."""
    normalised = normalize_subject(subject or "")
    return NO_SUBJECT if is_generic_subject(normalised) else key.token_id(_HASH_DOMAIN + normalised)


def is_reply_subject(subject: str) -> bool:
    """True when the subject carries a reply/forward prefix (Re:, AW:, Fwd: ...)."""
    plain = " ".join((subject or "").split()).lower()
    return bool(plain) and normalize_subject(plain) != plain


def _own_key(message, key: SearchKey) -> str:
    """The key a message without In-Reply-To/References has alone: its id, else its subject ("" if generic)."""
    if message.message_id:
        return message.message_id[:995]
    return storable_thread_key(SUBJECT_PREFIX + normalize_subject(message.subject), key)[:995]


def _is_headerless(message) -> bool:
    return not message.in_reply_to and not message.references


def relink_subjects(owner_id: int, hashes: Iterable[int], key: SearchKey) -> int:
    """Give the header-less replies among one owner's messages with these subject hashes the thread key
    of their conversation; returns how many keys changed. Idempotent, in any order of arrival.

    Per subject, oldest first: a message with headers (a thread starter or a proper reply) sets the
    conversation; a header-less reply joins the current one if its latest message is within the window,
    else keeps its own key. Only header-less messages are decrypted (their subject says whether they are
    replies); the others are read as metadata.
    """
    from django.db.models import Count

    from .models import Message

    wanted = sorted({h for h in hashes if h is not None and h != NO_SUBJECT})
    if not wanted:
        return 0
    shared = (  # one query finds the subjects with more than one message; most have just one
        Message.objects.filter(owner_id=owner_id, subject_hash__in=wanted)
        .values("subject_hash")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("subject_hash", flat=True)
    )
    changed: list[Message] = []
    for value in sorted(shared):
        rows = list(
            Message.objects.filter(owner_id=owner_id, subject_hash=value)
            .only("id", "owner_id", "sort_date", "thread_key", "message_id", "in_reply_to", "references", "subject")
            .order_by("-sort_date", "-id")[:GROUP_LIMIT]
        )
        rows.reverse()
        current_key, current_date = "", None
        for message in rows:
            headerless = _is_headerless(message)
            if headerless and is_reply_subject(message.subject):
                if current_key and current_date is not None and message.sort_date - current_date <= SUBJECT_WINDOW:
                    wanted = current_key
                else:
                    wanted = _own_key(message, key)
                if wanted != message.thread_key:
                    message.thread_key = wanted
                    changed.append(message)
            if message.thread_key:
                current_key, current_date = message.thread_key, message.sort_date
    if changed:
        Message.objects.bulk_update(changed, ["thread_key"])
    return len(changed)


def backfill(
    owner_id: int | None = None,
    since: date | None = None,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Recompute thread keys and subject hashes; returns (updated, skipped). Only ids, keys and hashes are
    touched, never logged. Messages without a raw source (imported) get their subject hash only.

    Resumable: only messages with an empty key or without a subject hash are selected unless
    `everything`, and each chunk is saved (and its subjects relinked) as it goes.
    """
    from django.db import transaction
    from django.db.models import Q

    from accounts import keyring

    from .models import Message
    from .parsing import parse_message
    from .search_tokens import search_key_for

    qs = Message.objects.all()
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if since:
        qs = qs.filter(sort_date__date__gte=since)
    if not everything:
        qs = qs.filter(Q(thread_key="", raw__isnull=False) | Q(subject_hash__isnull=True))
    locked = [uid for uid in set(qs.values_list("owner_id", flat=True)) if keyring.is_locked(uid)]
    qs = qs.exclude(owner_id__in=locked).only("id", "owner_id", "thread_key", "subject_hash", "raw", "subject")
    qs = qs.order_by("pk")
    total = qs.count()
    updated = processed = 0
    last_pk = None
    while True:
        chunk = list((qs if last_pk is None else qs.filter(pk__gt=last_pk))[:BACKFILL_CHUNK])
        if not chunk:
            break
        changed = []
        hashes: dict[int, set[int]] = {}
        for message in chunk:
            search_key = search_key_for(message.owner_id)
            dirty = False
            if message.raw is not None and (everything or not message.thread_key):
                parsed_key = parse_message(bytes(message.raw)).thread_key
                key = storable_thread_key(parsed_key, search_key)[:995]  # never a subject
                if key != message.thread_key:
                    message.thread_key, dirty = key, True
            hashed = subject_hash(message.subject, search_key)
            if hashed != message.subject_hash:
                message.subject_hash, dirty = hashed, True
            if hashed != NO_SUBJECT:
                hashes.setdefault(message.owner_id, set()).add(hashed)
            if dirty:
                changed.append(message)
        with transaction.atomic():
            Message.objects.bulk_update(changed, ["thread_key", "subject_hash"])
            for owner, owner_hashes in hashes.items():
                relink_subjects(owner, owner_hashes, search_key_for(owner))
        updated += len(changed)
        processed += len(chunk)
        last_pk = chunk[-1].pk
        if progress:
            progress(processed, total)
    skipped = Message.objects.filter(owner_id__in=locked).count() if locked else 0
    return updated, skipped
