"""Address completion for the compose page: the people the user corresponds with, most frequent first.

Two sources, both plain metadata of the user's own messages (nothing is decrypted): the senders of mail
they received (mailing lists and automated mail left out: nobody writes to a noreply address), and the
To/Cc recipients of mail they sent (messages whose sender is one of their own addresses). The user's own
addresses are never suggested. A prefix of two characters is needed, and one query answers it; the
grouping reads all of the user's live messages' sender columns (not yet measured on a large mailbox: a
materialised table of correspondents is the next step if it shows up in bench/load.py).
"""

from __future__ import annotations

from django.db import connection

from .replies import Pair, format_pair, own_addresses

MIN_QUERY = 2
LIMIT = 8

_SQL = """
SELECT address, max(name) AS name, count(*) AS n FROM (
    SELECT lower(from_address) AS address, from_name AS name FROM mail_message
     WHERE owner_id = %(owner)s AND from_address <> '' AND list_id = '' AND auto_submitted = ''
       AND expunged_at IS NULL
    UNION ALL
    SELECT lower(recipient), '' FROM mail_message, unnest(to_addresses || cc_addresses) AS recipient
     WHERE owner_id = %(owner)s AND lower(from_address) = ANY(%(own)s) AND expunged_at IS NULL
) AS correspondents
WHERE NOT (address = ANY(%(own)s)) AND (address LIKE %(prefix)s OR lower(name) LIKE %(words)s)
GROUP BY address
ORDER BY n DESC, address
LIMIT %(limit)s
"""


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def suggest(owner_id: int, query: str, limit: int = LIMIT) -> list[Pair]:
    """(name, address) pairs whose address starts with `query` or whose name contains it."""
    query = query.strip().lower()
    if len(query) < MIN_QUERY:
        return []
    params = {
        "owner": owner_id,
        "own": sorted(own_addresses(owner_id)),
        "prefix": f"{_like(query)}%",
        "words": f"%{_like(query)}%",
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SQL, params)
        return [(name or "", address) for address, name, _n in cursor.fetchall()]


def completions(owner_id: int, field_text: str) -> list[tuple[str, str]]:
    """For what is typed in a recipients field: (value of the whole field, label) per suggestion.

    Only the last comma-separated entry is being typed; the suggestion replaces it and keeps the rest,
    so choosing one in the browser's list completes that entry and no other.
    """
    head, _, last = field_text.rpartition(",")
    head = f"{head.strip()}, " if head.strip() else ""
    return [
        (f"{head}{format_pair(name, address)}", format_pair(name, address)) for name, address in suggest(owner_id, last)
    ]
