"""Order-independent table digests, computed the same way over source rows and target rows.

A row is a dict of column -> canonical value (legacy.normalize.canonical; None values are
left out, so "absent" and "null" agree). Its digest is SHA-256 over a canonical JSON encoding, and a
table's digest is the sum of its rows' digests mod 2**256: independent of order, so the legacy's id
order and PostgreSQL's return order do not matter, and computable while streaming.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

_MOD = 2**256


def row_digest(row: dict[str, Any]) -> int:
    items = sorted((k, v) for k, v in row.items() if v is not None)
    encoded = json.dumps(items, ensure_ascii=False, separators=(",", ":"), default=str, sort_keys=True)
    return int.from_bytes(hashlib.sha256(encoded.encode("utf-8")).digest(), "big")


@dataclass
class Digest:
    count: int = 0
    total: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        self.total = (self.total + row_digest(row)) % _MOD

    @property
    def short(self) -> str:
        return f"{self.total:064x}"[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Digest) and (self.count, self.total) == (other.count, other.total)

    __hash__ = None  # mutable
