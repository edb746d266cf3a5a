"""Trusted senders / VIPs: matching a sender address against the user's patterns.

The rules engine reads only ``RuleMessage.sender_trusted``; this module is how the integrator (and the
analysis pipeline's urgency booster, if it wants the same semantics) computes it. A pattern is one of

- an address: ``alice@example.com`` (exact, case-insensitive);
- a domain: ``example.com`` or ``@example.com``: that domain and its subdomains, like the rules'
  "from domain" condition;
- a wildcard pattern with ``*`` (any run of characters) and ``?`` (one character), neither crossing the
  "@": ``boss*@example.com``, ``*@*.example.org``, ``*.example.net`` (a wildcard without "@" is matched
  against the domain).

Wildcards are matched by a small glob matcher (no regular expressions, so no backtracking blow-up
whatever the number of stars): time is at most proportional to pattern length times address length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_PATTERN_LENGTH = 320
_FORBIDDEN = re.compile(r"[\s<>,;\"()\[\]\\]")


def normalize_sender_pattern(pattern: str) -> str:
    """The canonical form of a pattern (trimmed, lower-case); ValueError with a user-facing reason if invalid."""
    text = pattern.strip().lower()
    if not text:
        raise ValueError("enter an address, a domain or a wildcard pattern")
    if len(text) > MAX_PATTERN_LENGTH:
        raise ValueError(f"at most {MAX_PATTERN_LENGTH} characters")
    if _FORBIDDEN.search(text):
        raise ValueError("no spaces, brackets, quotes, commas or backslashes")
    if text.count("@") > 1:
        raise ValueError("at most one @")
    if not text.strip("*?@."):
        raise ValueError("too broad: the pattern would match every sender")
    local, at, domain = text.rpartition("@")
    if at and not domain:
        raise ValueError("the domain after @ is missing")
    return text


class SenderPatterns:
    """A compiled set of patterns; :meth:`matches` is what ``RuleMessage.sender_trusted`` should hold.

    Invalid patterns are skipped (they are refused when saved; a stored one that no longer passes must
    not break mail processing).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.addresses: set[str] = set()
        self.domains: set[str] = set()
        self.wildcards: list[tuple[str | None, str]] = []  # (local-part pattern or None for any, domain pattern)
        for raw in patterns:
            try:
                pattern = normalize_sender_pattern(raw)
            except ValueError:
                continue
            if "*" in pattern or "?" in pattern:
                local, at, domain = pattern.rpartition("@")
                self.wildcards.append((local if local else None, domain))
            elif pattern.startswith("@") or "@" not in pattern:
                self.domains.add(pattern.lstrip("@"))
            else:
                self.addresses.add(pattern)

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains or self.wildcards)

    def matches(self, address: str) -> bool:
        """Whether the sender address is covered by any pattern."""
        address = address.strip().lower()
        if not address:
            return False
        if address in self.addresses:
            return True
        local, at, domain = address.rpartition("@")
        if not at:
            return False
        if self._domain_listed(domain):
            return True
        return any(
            glob_match(domain_pattern, domain) and (local_pattern is None or glob_match(local_pattern, local))
            for local_pattern, domain_pattern in self.wildcards
        )

    def _domain_listed(self, domain: str) -> bool:
        """The domain or one of its parents is listed ("mail.example.com" is covered by "example.com")."""
        parts = domain.split(".")
        return any(".".join(parts[i:]) in self.domains for i in range(len(parts)))


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` as a whole, "*" standing for any run and "?" for one character.

    The classic two-pointer algorithm: on a mismatch it only retries from the last "*", so it never
    backtracks further than that and needs no recursion.
    """
    p = t = 0
    star = resume = -1
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return pattern[p:].strip("*") == ""
