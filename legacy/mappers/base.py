"""One mapper per legacy table: which Mailhelper rows a legacy row becomes, and back for the checksums.

A mapper declares the columns it consumes (`mapped`; everything else the row holds is kept in a
LegacyRecord by the importer), its foreign keys (for orphan checks), and implements `create` (legacy
rows -> Mailhelper rows, one batch, inside the importer's transaction) and `target_rows` (Mailhelper
rows -> the mapped legacy columns, canonical, for the target checksum). `adjust` applies the
normalisations that are part of the mapping (0/1 -> bool, "SSL" -> "ssl", <id> -> id) to the source
side, so both sides are compared in the same form. Where the import had to change a value (a name
taken twice, a missing timestamp, a category Mailhelper does not know), the legacy value is kept in
the map entry's note["original"], which the target side puts back: the checksum then proves that
the value is accounted for, and the report shows what changed.

Encrypted legacy columns are never decrypted here: the importer stores them as LegacySealedValue and
the first-login conversion (conversion.py) writes them into the fields named in `conversion.APPLY`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from legacy.models import LegacyImportMap

from .. import normalize, schema
from ..context import Context, Result

ROW, RECORD, SKIPPED = LegacyImportMap.Kind.ROW, LegacyImportMap.Kind.RECORD, LegacyImportMap.Kind.SKIPPED
IMPORTED_TOTP_NAME = "Authenticator app (imported)"
#: Stored as the account's status message; the account list translates it (a msgid, see core.stored_text).
WAITING_MESSAGE = gettext_noop("Imported from the legacy application: waiting for your first login.")


def canonical(value: Any) -> Any:
    return normalize.canonical(value)


def clear_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class Mapper:
    table = ""
    label = ""  # model label of the Mailhelper rows (sealed values point at it)
    fks: dict[str, tuple[str, bool]] = {}  # column -> (legacy table, required)
    mapped: frozenset[str] = frozenset()
    not_digested: frozenset[str] = frozenset()  # consumed, but changed by design at first login
    ignored: frozenset[str] = frozenset()  # not imported at all (embeddings, derived copies)
    content: frozenset[str] = frozenset()  # plain legacy columns holding mail content: encrypted in the record
    by_design = ""  # the whole table is not imported, and why
    self_stored: frozenset[str] = frozenset()  # encrypted columns the mapper keeps itself (not sealed values)
    record_why = "Mailhelper has no equivalent yet; kept for later"

    def consumed(self, row: dict) -> frozenset[str]:
        """The columns this row's Mailhelper row takes (default `mapped`); the rest go to its LegacyRecord.

        Never more than `mapped`: a mapper whose rows differ in kind (POP3 and IMAP accounts) leaves
        the columns that mean nothing for a row's kind in its record, as before the kind existed.
        """
        return self.mapped

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return row.get("user_id")

    def owner_pk(self, row: dict, result: Result, ctx: Context) -> int | None:
        return ctx.user_pk(self.owner_legacy(row, ctx))

    def check(self, row: dict, ctx: Context) -> str | None:
        return None

    def predict_skip(self, row: dict, ctx: Context) -> str | None:
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        return [Result(row["id"], RECORD, why=self.record_why) for row in rows]

    def finish(self, ctx: Context) -> None:
        pass

    def report_existing(self, row: dict, ctx: Context) -> None:
        """What to report again about a row an earlier run imported (so every run's report is complete)."""

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        pass

    def source_canonical(self, row: dict, ctx: Context, kind: str) -> dict:
        d = {}
        for column, value in row.items():
            if column in self.not_digested or column in self.ignored or value is None:
                continue
            if schema.TABLES[self.table].column(column).type == schema.ENCRYPTED:
                d[column] = normalize.fingerprint(value)
            else:
                d[column] = canonical(value)
        if kind == ROW:
            self.adjust(row, d, ctx)
        return clear_none(d)

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {}

    # helpers
    def _owner_of(self, ctx: Context, table: str, legacy_id: int | None) -> int | None:
        return ctx.all_owners.get(table, {}).get(legacy_id)


def keep_original(note: dict, column: str, value: Any) -> None:
    note.setdefault("original", {})[column] = canonical(value)


def restore_times(model, objects: list, fields: list[str]) -> None:
    """Set auto_now_add columns to the legacy values (Django overwrites them on insert)."""
    if objects:
        model.objects.bulk_update(objects, fields)


def unique_name(name: str, taken: set[str], limit: int) -> str:
    base, n = name[:limit], 2
    candidate = base
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = base[: limit - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def existing_pairs(model, column: str, message_pks: list) -> set[tuple[int, str]]:
    """(tag or rule id, message pk) pairs that already exist for these messages: one query per batch."""
    pks = [pk for pk in message_pks if pk]
    rows = model.objects.filter(message_id__in=pks).values_list(column, "message_id") if pks else []
    return {(other, str(message)) for other, message in rows}
