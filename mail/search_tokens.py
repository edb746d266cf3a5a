"""Blind keyword index for encrypted mail: normalised tokens -> keyed 64-bit ids.

Subjects and bodies are stored encrypted, so the database cannot run ``LIKE`` or full-text search on
them. Instead, at sync time (and by backfill) each message's words are normalised and every distinct
token is turned into ``HMAC-SHA256(user search key, token)`` truncated to a signed 64-bit integer.
The ids go into a ``bigint[]`` column with a GIN index; a search for several words is the array
containment ``search_ids @> query_ids`` (AND semantics), which the GIN index answers without touching
ciphertext. No token text is ever stored.

What a blind index leaks, and to whom (the trade-off accepted by the design):

* Someone holding the database (not the keys) sees, for ONE user, which messages share a token id,
  how many distinct tokens a message has, and how often each id occurs. Frequency analysis can guess
  very common words, and a known message (e.g. a newsletter the attacker also received) maps its ids
  back to words for that user.
* Nothing links users: each user's search key is derived from their own data key, so the same word
  has unrelated ids in two mailboxes.
* Guessing a word's id needs the key: the HMAC is keyed, so a dictionary attack on the stored ids is
  not possible without the user's data key.

Matching is on whole normalised words (no prefixes, no stemming): "invoice" does not find "invoices".
Normalisation folds case and accents, so "Müller", "MULLER" and "muller" are the same token; the
query goes through exactly the same :func:`normalise`, which is what makes index and query agree.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from itertools import chain

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "MAX_TOKEN_LEN",
    "MIN_TOKEN_LEN",
    "SEARCH_KEY_BYTES",
    "SearchKey",
    "derive_search_key",
    "message_tokens",
    "normalise",
]

MIN_TOKEN_LEN = 2
MAX_TOKEN_LEN = 64
SEARCH_KEY_BYTES = 32
SEARCH_KEY_INFO = b"mailhelper search key v1"

# A word is a run of letters/digits (``\w`` without the underscore), at least two of them: one-letter
# tokens are dropped in the regex itself so they never cost a Python-level step.
_WORD_RE = re.compile(rf"[^\W_]{{{MIN_TOKEN_LEN},}}")
# Addresses are found on the already folded text, by looking left and right of each "@" (a regex for
# whole addresses would be tried at every position of a long body). Deliberately lenient (no RFC 5322
# parser): it only has to produce the same string for the same address in a message and in a query.
_LOCAL_RE = re.compile(r"[\w.+-]{1,64}$")
_DOMAIN_RE = re.compile(r"[^\W_][\w-]*(?:\.[\w-]+)+")
_MAX_DOMAIN_LEN = 253
_MAX_ADDRESSES = 1000  # per text; bounds the work on a body made of "@"s

# Letters that NFKD does not decompose but that people type without the accent.
# (ß and ẞ are handled by casefold, which maps them to "ss".)
_SPECIAL_FOLDS = {
    "æ": "ae",
    "ø": "o",
    "œ": "oe",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ł": "l",
    "ŀ": "l",
    "þ": "th",
    "ı": "i",
    "ĸ": "k",
}
_SPECIAL_RE = re.compile(f"[{''.join(_SPECIAL_FOLDS)}]")


def _marks_class() -> str:
    """All combining marks (categories Mn, Mc, Me) of the Basic Multilingual Plane as a regex class.

    The stdlib ``re`` has no ``\\p{M}``, so the class is built from ``unicodedata`` at import (~15 ms).
    Stripping every mark, not only the Latin accent block, keeps words of Indic, Hebrew or Arabic
    script whole (their vowel signs are marks and would otherwise split a word in two). Only the BMP:
    a class with characters beyond U+FFFF cannot be compiled to a bitmap and is ten times slower; the
    few marks beyond it (historic scripts) just split words, the same way in index and query.
    """
    ranges: list[str] = []
    start: int | None = None
    for cp in range(0x300, 0x10001):
        is_mark = cp < 0x10000 and unicodedata.category(chr(cp))[0] == "M"
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return f"[{''.join(ranges)}]+"


_MARKS_RE = re.compile(_marks_class())

# ASCII fast path: one C-level byte translation lowercases letters and turns everything that is not a
# letter or digit into a space, then ``split()`` cuts the words. Several times faster than a regex.
_ASCII_WORDS = bytes(
    (c | 0x20 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else 32 for c in range(256)
)
_ASCII_SHORT = "abcdefghijklmnopqrstuvwxyz0123456789"


def _unicode_words(text: str) -> list[str]:
    """Words of a non-ASCII text: NFKD, casefold, strip marks, fold special letters, split."""
    text = unicodedata.normalize("NFKD", text).casefold()
    text = _MARKS_RE.sub("", text)
    if _SPECIAL_RE.search(text):
        text = _SPECIAL_RE.sub(lambda m: _SPECIAL_FOLDS[m.group()], text)
    if text.isascii():  # accents stripped, Latin-script text usually is: take the fast split
        tokens = text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
    else:
        tokens = _WORD_RE.findall(text)
    if "@" in text:
        tokens.extend(_address_tokens(text))
    return tokens


def _address_tokens(folded: str) -> list[str]:
    """Whole addresses and their domains found in an already folded text."""
    out: list[str] = []
    at = folded.find("@")
    seen = 0
    while at != -1 and seen < _MAX_ADDRESSES:
        seen += 1
        local = _LOCAL_RE.search(folded, max(0, at - 64), at)
        domain = _DOMAIN_RE.match(folded, at + 1, at + 1 + _MAX_DOMAIN_LEN)
        if local and domain:
            local_part = local.group().lstrip("._+-")
            domain_part = domain.group().rstrip("-")
            if local_part:
                out.append(f"{local_part}@{domain_part}")
                out.append(domain_part)
        at = folded.find("@", at + 1)
    return out


def normalise(text: str) -> list[str]:
    """Distinct search tokens of ``text``, in first-seen order.

    Case- and accent-folded ("Müller" -> "muller", "café" -> "cafe", "Straße" -> "strasse"), split
    into runs of letters/digits of at least 2 characters, each capped at 64 characters. An e-mail
    address also yields the whole address and its domain, so a search for the exact address is more
    selective than its parts: "anna.meier@example.com" -> "anna", "meier", "example", "com",
    "anna.meier@example.com", "example.com".
    """
    if not text:
        return []
    if text.isascii():
        unique = dict.fromkeys(text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split())
        if "@" in text:
            unique.update(dict.fromkeys(_address_tokens(text.lower())))
    else:
        # Fold each distinct whitespace-separated chunk once, not every repetition: in real mail most
        # chunks repeat, and the Unicode steps cost per character. Order of first occurrence is kept.
        unique = dict.fromkeys(_unicode_words(" ".join(dict.fromkeys(text.split()))))
    for short in _ASCII_SHORT:  # the split paths keep 1-character words: 36 dict pops, no test per token
        unique.pop(short, None)
    if max(map(len, unique), default=0) > MAX_TOKEN_LEN:
        return list(dict.fromkeys(t[:MAX_TOKEN_LEN] for t in unique))
    return list(unique)


def message_tokens(subject: str, body: str, addresses: list[str], max_tokens: int = 5000) -> list[str]:
    """Distinct tokens of one message for the blind index, at most ``max_tokens`` of them.

    Addresses and subject come first so that, when a huge body hits the cap, it is the tail of the
    body that is not indexed, never the sender or the subject. The cap bounds the row size and the
    GIN index (5,000 ids = 40 KB per message at most).
    """
    parts = [normalise(a) for a in addresses if a]
    parts.append(normalise(subject))
    parts.append(normalise(body))
    merged = list(dict.fromkeys(chain.from_iterable(parts)))
    return merged[:max_tokens]


def derive_search_key(data_key: bytes) -> bytes:
    """The user's search key, derived from their data key (HKDF-SHA256, no salt, fixed info).

    Deriving instead of generating means no extra key to wrap, store or recover: whoever can decrypt
    the user's mail can search it, and nobody else. Domain separation (the ``info`` string) keeps it
    unrelated to the data key itself and to any other derived key. The index stays valid as long as
    the data key does (password change and recovery re-wrap the same data key).
    """
    if len(data_key) != 32:
        raise ValueError("data key must be 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=SEARCH_KEY_BYTES, salt=None, info=SEARCH_KEY_INFO).derive(data_key)


class SearchKey:
    """A user's 32-byte search key, turning tokens into blind 64-bit ids.

    The HMAC is keyed once; each token then costs one ``.copy()`` of the keyed object (the inner and
    outer pads are already absorbed), an update and a digest, instead of re-keying per token.
    """

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != SEARCH_KEY_BYTES:
            raise ValueError("search key must be 32 bytes")
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)

    @classmethod
    def from_data_key(cls, data_key: bytes) -> SearchKey:
        """Shortcut for ``SearchKey(derive_search_key(data_key))``."""
        return cls(derive_search_key(data_key))

    def __repr__(self) -> str:  # never show key material, not even in a traceback
        return "<SearchKey>"

    def __reduce__(self) -> tuple:
        """Refuse pickling: a key must never travel in a Celery message or a cache entry."""
        raise TypeError("SearchKey cannot be pickled; derive it from the data key where it is needed")

    def token_id(self, token: str) -> int:
        """First 8 bytes of HMAC-SHA256(key, token) as a signed int64 (fits PostgreSQL ``bigint``)."""
        mac = self._mac.copy()
        mac.update(token.encode("utf-8"))
        return int.from_bytes(mac.digest()[:8], "big", signed=True)

    def token_ids(self, tokens: Iterable[str]) -> list[int]:
        """Sorted distinct ids of ``tokens`` (sorted so equal token sets store equal arrays)."""
        copy = self._mac.copy
        ids = set()
        for token in tokens:
            mac = copy()
            mac.update(token.encode("utf-8"))
            ids.add(int.from_bytes(mac.digest()[:8], "big", signed=True))
        return sorted(ids)

    def query_ids(self, query: str) -> list[int]:
        """Ids of the words of a search query; a message matches if its ids contain all of them.

        An empty list (empty query, or only 1-letter words) means "no searchable word": the caller
        must not run ``@> '{}'``, which would match every message.
        """
        return self.token_ids(normalise(query))

    def message_ids(self, subject: str, body: str, addresses: list[str], max_tokens: int = 5000) -> list[int]:
        """Convenience: ``token_ids(message_tokens(...))``, the value to store for one message."""
        return self.token_ids(message_tokens(subject, body, addresses, max_tokens))


def search_key_for(owner_id: int) -> SearchKey:
    """The user's search key, derived from their data key (KeyringLocked for a locked strict-mode user)."""
    from accounts import keyring

    return SearchKey.from_data_key(keyring.dek_for(owner_id))
