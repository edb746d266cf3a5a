"""What one import run shares between the importer and the mappers: results, reports, the context.

Its own module so that the mappers (legacy/mappers/) and the importer that runs them both import it,
and neither imports the other (importer -> mappers -> context, no circle).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .checksums import Digest
from .models import LegacyImportMap


@dataclass
class Result:
    """What one legacy row became."""

    legacy_id: int
    kind: str  # LegacyImportMap.Kind
    target_pk: str = ""
    note: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # for records and skips: shown in the report


@dataclass
class TableReport:
    table: str
    source_rows: int = 0
    orphans: int = 0  # rejected: foreign key to nothing, or a value that does not fit its column
    skipped: int = 0
    imported: int = 0  # new in this run
    already: int = 0  # imported by an earlier run
    records: int = 0
    unselected: int = 0  # other users' rows, with --user
    source: Digest = field(default_factory=Digest)
    target: Digest | None = None
    by_design: str = ""
    reasons: Counter = field(default_factory=Counter)  # orphan/skip/record reasons -> rows
    examples: dict[str, list[int]] = field(default_factory=dict)  # reason -> first legacy ids, for the operator

    def count(self, reason: str, legacy_id: int) -> None:
        self.reasons[reason] += 1
        ids = self.examples.setdefault(reason, [])
        if len(ids) < 5:
            ids.append(legacy_id)

    @property
    def status(self) -> str:
        if self.by_design:
            return "NOT IMPORTED"
        if self.target is None:
            return "DRY-RUN"
        return "OK" if self.source == self.target else "MISMATCH"


@dataclass
class ImportReport:
    tables: list[TableReport] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    missing_user: str = ""  # --user named nobody in the legacy users table
    unknown_rule_keys: list[str] = field(default_factory=list)  # "rule 7: conditions.sender_regex"
    dropped_columns: Counter = field(default_factory=Counter)  # "raw_emails.email_embedding" -> non-null rows
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing_tables
            and not self.missing_user
            and all(t.status in ("OK", "NOT IMPORTED", "DRY-RUN") for t in self.tables)
        )


class Entry(NamedTuple):
    kind: str
    target_pk: str
    why: str


class Context:
    """What mappers share while one import runs: id maps of earlier tables, owners, cached keys."""

    def __init__(self, dry_run: bool, report: ImportReport) -> None:
        self.dry_run = dry_run
        self.report = report
        self.present: dict[str, set[int]] = {}  # legacy ids in the source, per table
        self.ok: dict[str, set[int]] = {}  # legacy ids imported (or importable, in a dry run)
        self.owner: dict[str, dict[int, int]] = {}  # legacy owner (users.id) of imported rows, per table
        self.all_owners: dict[str, dict[int, int]] = {}  # ... of every source row whose owner is known
        self.maps: dict[str, dict[int, Entry]] = {}
        self.cache: dict[str, Any] = {}  # mapper-specific look-ups (folders per account, tag names ...)
        self.inverses: dict[str, dict[str, int]] = {}
        self.only_username: str | None = None  # --user: import only this legacy user's rows
        self.only_user: int | None = None  # ... whose legacy id the users pass finds
        self._deks: dict[int, bytes] = {}

    def map_of(self, table: str) -> dict[int, Entry]:
        """legacy id -> what it became, for one table (small tuples: a table can have millions of rows)."""
        if table not in self.maps:
            rows = LegacyImportMap.objects.filter(table=table).values_list(
                "legacy_id", "kind", "target_pk", "note__why"
            )
            self.maps[table] = {legacy_id: Entry(kind, pk, why or "") for legacy_id, kind, pk, why in rows.iterator()}
        return self.maps[table]

    def target(self, table: str, legacy_id: int | None) -> Entry | None:
        if legacy_id is None:
            return None
        return self.map_of(table).get(legacy_id)

    def row_pk(self, table: str, legacy_id: int | None) -> str | None:
        """The Mailhelper pk of an imported legacy row, None if it is not a row (missing, record, skipped)."""
        entry = self.target(table, legacy_id)
        return entry.target_pk if entry is not None and entry.kind == LegacyImportMap.Kind.ROW else None

    def user_pk(self, legacy_user_id: int | None) -> int | None:
        pk = self.row_pk("users", legacy_user_id)
        return int(pk) if pk else None

    def legacy_id(self, table: str, target_pk: Any) -> int | None:
        """The legacy id an imported row came from (for rebuilding foreign keys in the target pass)."""
        if table not in self.inverses:
            self.inverses[table] = {
                m.target_pk: lid for lid, m in self.map_of(table).items() if m.kind == LegacyImportMap.Kind.ROW
            }
        return None if target_pk is None else self.inverses[table].get(str(target_pk))

    def dek(self, user_pk: int) -> bytes:
        if user_pk not in self._deks:
            from accounts import keyring

            self._deks[user_pk] = keyring.dek_for(user_pk)
        return self._deks[user_pk]
