"""Thread keys that are safe to store in a plain column.

The parser keys a conversation by its root Message-ID, or, for mail without any id, by the
normalised subject ("subject:<text>"). A subject must not be stored in clear, so that fallback is
replaced by a keyed hash under the owner's search key: equal subjects of one user still group,
and the column reveals no words.
"""

from __future__ import annotations

from .search_tokens import SearchKey

SUBJECT_PREFIX = "subject:"


def storable_thread_key(parsed_key: str, key: SearchKey) -> str:
    if parsed_key.startswith(SUBJECT_PREFIX):
        return f"{SUBJECT_PREFIX}{key.token_id(parsed_key[len(SUBJECT_PREFIX) :]) & 0xFFFFFFFFFFFFFFFF:016x}"
    return parsed_key
