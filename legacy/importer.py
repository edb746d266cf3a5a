"""The import: legacy tables in foreign-key order, each streamed in batches, then verified.

For every table (mappers in legacy.mappers):

1. Source pass. Rows are read in id order and normalised (normalize.convert by declared type). A row
   whose required foreign key points to a legacy row that does not exist, or that was not imported,
   is an *orphan*: counted and reported, never a crash. Rows already in LegacyImportMap are left
   alone (re-running imports nothing twice); new rows go to the table's mapper, which creates the
   Mailhelper rows and says for each legacy row what it became: a *row* (plus a LegacyRecord for any
   leftover columns Mailhelper has no field for), a *record* (the whole row kept as a LegacyRecord,
   e.g. reply styles), or *skipped* (with the reason, e.g. a username already taken). Legacy
   ciphertext is stored as LegacySealedValue for the first-login conversion. One transaction per batch,
   so an interrupted import resumes where it stopped.
2. Checksums. The source digest is computed over the rows that were imported (rows and records), the
   target digest by reading each map entry's target back from PostgreSQL and rebuilding the same
   canonical row: mapped columns from the Mailhelper row, leftovers from the LegacyRecord, encrypted
   columns by the fingerprint of the sealed ciphertext. Any difference in count or digest fails.

`--dry-run` runs the source pass only: schema, foreign keys and rule conversion are checked and
counted, nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from core.db.locks import try_advisory_lock
from legacy.models import LegacyImportMap, LegacyRecord, LegacySealedValue

from . import normalize, schema
from .checksums import Digest
from .context import Context, Entry, ImportReport, Result, TableReport
from .source import LegacySource

log = logging.getLogger(__name__)

BATCH = 500
TARGET_CHUNK = 2000
RECORD_LABEL = "mailhelper.legacyrecord"

Progress = Callable[[str, int, int], None]


def _normalise(table: schema.Table, present: list[str], raw: dict[str, Any]) -> dict[str, Any]:
    row = {}
    for name in present:
        column = table.column(name)
        try:
            row[name] = normalize.convert(column.type, raw[name])
        except normalize.BadValue as exc:
            raise normalize.BadValue(f"{table.name}.{name} ({exc}) of row {raw.get('id')}") from None
    return row


def _fk_problem(mapper, row: dict[str, Any], ctx: Context) -> str | None:
    for column, (parent, required) in mapper.fks.items():
        value = row.get(column)
        if value is None:
            if required:
                return f"no {column}"
            continue
        if value not in ctx.present.get(parent, ()):
            if required:
                return f"{column} points to a missing {parent} row"
            row[column] = None  # a dangling optional reference: imported as none (both digests agree)
            ctx.report.warnings.append(f"{mapper.table} #{row['id']}: {column} pointed to a missing {parent} row")
            continue
        if value not in ctx.ok.get(parent, ()):
            if required:
                return f"its {parent} row was not imported"
            row[column] = None
    return None


def run_table(mapper, source: LegacySource, ctx: Context, progress: Progress | None = None) -> TableReport:
    report = TableReport(mapper.table, by_design=mapper.by_design)
    table = schema.TABLES[mapper.table]
    available = set(source.columns(mapper.table))
    present = [c for c in table.names if c in available]
    for column in mapper.ignored:
        if column in available:
            ctx.report.dropped_columns[f"{mapper.table}.{column}"] += 0
    ctx.present[mapper.table] = set()
    ctx.ok[mapper.table] = set()
    ctx.inverses.clear()
    ctx.owner[mapper.table] = {}
    total = source.count(mapper.table)
    done = 0
    existing = ctx.map_of(mapper.table)  # a dry run after an import sees those rows as imported too
    for raw_batch in source.batches(mapper.table, present, BATCH):
        rows = []
        for raw in raw_batch:
            try:
                row = _normalise(table, present, raw)
            except normalize.BadValue as exc:  # reported like an orphan, never a crash
                report.source_rows += 1
                report.orphans += 1
                report.count(f"invalid value: {str(exc).split(' of row')[0]}", raw.get("id"))
                continue
            for column in mapper.ignored:
                if row.get(column) is not None or raw.get(column) is not None:
                    ctx.report.dropped_columns[f"{mapper.table}.{column}"] += 1
                row.pop(column, None)
            ctx.present[mapper.table].add(row["id"])
            rows.append(row)
        report.source_rows += len(rows)
        if mapper.by_design:
            report.skipped += len(rows)
            done += len(rows)
            continue
        fresh = []
        for row in rows:
            owner = mapper.owner_legacy(row, ctx)
            if owner is not None:  # every row's owner, selected or not, so children can be told apart
                ctx.all_owners.setdefault(mapper.table, {})[row["id"]] = owner
            if ctx.only_username and not _selected(mapper, row, owner, ctx):
                report.unselected += 1
                continue
            problem = _fk_problem(mapper, row, ctx) or mapper.check(row, ctx)
            if problem:
                report.orphans += 1
                report.count(f"orphan: {problem}", row["id"])
                continue
            entry = existing.get(row["id"])
            if entry is not None:
                report.already += 1
                if entry.kind != LegacyImportMap.Kind.ROW:  # the same lines as the run that decided it
                    report.count(f"{_PREFIX[entry.kind]}: {entry.why}", row["id"])
                mapper.report_existing(row, ctx)
                if entry.kind == LegacyImportMap.Kind.SKIPPED:
                    report.skipped += 1
                    continue
                _accept(mapper, row, ctx, report, entry.kind)
            else:
                fresh.append(row)
        if fresh and ctx.dry_run:
            for row in fresh:
                why = mapper.predict_skip(row, ctx)
                if why:
                    report.skipped += 1
                    report.count(f"{_PREFIX[LegacyImportMap.Kind.SKIPPED]}: {why}", row["id"])
                else:
                    _accept(mapper, row, ctx, report, LegacyImportMap.Kind.ROW)
        elif fresh:
            by_id = {row["id"]: row for row in fresh}
            with transaction.atomic():
                results = mapper.create(fresh, ctx)
                entries = _store(mapper, results, by_id, present, ctx)
            for result in results:
                stored = entries[result.legacy_id]
                existing[result.legacy_id] = Entry(stored.kind, stored.target_pk, result.why)
                if result.kind != LegacyImportMap.Kind.ROW:
                    report.count(f"{_PREFIX[result.kind]}: {result.why}", result.legacy_id)
                if result.kind == LegacyImportMap.Kind.SKIPPED:
                    report.skipped += 1
                    continue
                report.imported += 1
                _accept(mapper, by_id[result.legacy_id], ctx, report, result.kind)
        done += len(rows)
        if progress:
            progress(mapper.table, done, total)
    report.records = sum(1 for m in existing.values() if m.kind == LegacyImportMap.Kind.RECORD)
    mapper.finish(ctx)
    return report


def _selected(mapper, row: dict[str, Any], owner: int | None, ctx: Context) -> bool:
    if mapper.table == "users" and row.get("username") == ctx.only_username:
        ctx.only_user = row["id"]
    return owner is not None and owner == ctx.only_user


_PREFIX = {LegacyImportMap.Kind.SKIPPED: "skipped", LegacyImportMap.Kind.RECORD: "kept as legacy record"}


def _accept(mapper, row: dict[str, Any], ctx: Context, report: TableReport, kind: str) -> None:
    ctx.ok[mapper.table].add(row["id"])
    owner = mapper.owner_legacy(row, ctx)
    if owner is not None:
        ctx.owner[mapper.table][row["id"]] = owner
    report.source.add(mapper.source_canonical(row, ctx, kind))


def _column_type(table: str, column: str) -> str:
    return schema.TABLES[table].column(column).type


def _store(mapper, results: list[Result], rows: dict[int, dict], present: list[str], ctx: Context) -> dict:
    """Map entries, leftover/whole-row records and sealed values for one batch of results."""
    entries, records, sealed = [], [], []
    for result in results:
        row = rows[result.legacy_id]
        owner_pk = mapper.owner_pk(row, result, ctx)
        entry = LegacyImportMap(
            table=mapper.table,
            legacy_id=result.legacy_id,
            kind=result.kind,
            target_pk=result.target_pk,
            owner_id=owner_pk,
            note={**result.note, "why": result.why} if result.why else result.note,
        )
        entries.append(entry)
        if result.kind == LegacyImportMap.Kind.SKIPPED or owner_pk is None:
            continue
        consumed = mapper.consumed(row) if result.kind == LegacyImportMap.Kind.ROW else frozenset()
        leftovers = [c for c in present if c != "id" and c not in consumed and c not in mapper.ignored]
        data, secrets, cipher = {}, {}, {}
        for column in leftovers:
            value = row.get(column)
            if value is None:
                continue
            if _column_type(mapper.table, column) == schema.ENCRYPTED:
                cipher[column] = value
            elif column in mapper.content:
                secrets[column] = normalize.canonical(value)
            else:
                data[column] = normalize.canonical(value)
        if result.kind == LegacyImportMap.Kind.ROW:
            for column in consumed:
                value = row.get(column)
                if column in mapper.self_stored:
                    continue
                if value is not None and _column_type(mapper.table, column) == schema.ENCRYPTED:
                    sealed.append(_sealed(owner_pk, mapper.label, result.target_pk, column, value))
        if data or secrets or cipher or result.kind == LegacyImportMap.Kind.RECORD:
            record = LegacyRecord(owner_id=owner_pk, table=mapper.table, legacy_id=result.legacy_id, data=data)
            record.secrets = _json(secrets)
            from accounts.fields import seal_fields

            seal_fields(record, ctx.dek(owner_pk))
            records.append(record)
            sealed += [_sealed(owner_pk, RECORD_LABEL, str(record.pk), c, v) for c, v in cipher.items()]
            if result.kind == LegacyImportMap.Kind.RECORD:
                entry.target_pk = str(record.pk)
    LegacyRecord.objects.bulk_create(records)
    LegacySealedValue.objects.bulk_create(sealed)
    LegacyImportMap.objects.bulk_create(entries)
    return {e.legacy_id: e for e in entries}


def _json(value: dict) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


def _sealed(owner_pk: int, label: str, pk: str, column: str, ciphertext: str) -> LegacySealedValue:
    return LegacySealedValue(
        owner_id=owner_pk,
        target=label,
        target_pk=pk,
        field=column,
        ciphertext=ciphertext,
        fingerprint=normalize.fingerprint(ciphertext),
    )


# --- the target pass ---------------------------------------------------------------------------------


def target_digest(mapper, ctx: Context) -> Digest:
    """Rebuild every imported row's canonical form from what PostgreSQL holds now."""
    import json

    digest = Digest()
    imported = LegacyImportMap.objects.filter(table=mapper.table).exclude(kind=LegacyImportMap.Kind.SKIPPED)
    if ctx.only_username:
        imported = imported.filter(owner_id=ctx.user_pk(ctx.only_user))
    last = None
    while True:  # keyset pagination: a chunk of map entries at a time, never the whole table in memory
        page = imported.order_by("legacy_id") if last is None else imported.filter(legacy_id__gt=last)
        chunk = list(page.order_by("legacy_id")[:TARGET_CHUNK])
        if not chunk:
            break
        last = chunk[-1].legacy_id
        row_pks = [m.target_pk for m in chunk if m.kind == LegacyImportMap.Kind.ROW]
        rows = mapper.target_rows(row_pks, {m.target_pk: m for m in chunk}, ctx) if row_pks else {}
        records = {
            r.legacy_id: r
            for r in LegacyRecord.objects.filter(table=mapper.table, legacy_id__in=[m.legacy_id for m in chunk])
        }
        record_fps = _fingerprints(RECORD_LABEL, [str(r.pk) for r in records.values()])
        row_fps = _fingerprints(mapper.label, row_pks) if row_pks and mapper.label else {}
        for entry in chunk:
            record = records.get(entry.legacy_id)
            if entry.kind == LegacyImportMap.Kind.ROW:
                if entry.target_pk not in rows:
                    continue  # the row is gone: counts differ
                own = {k: v for k, v in row_fps.get(entry.target_pk, {}).items() if k in mapper.mapped}
                canonical = {"id": entry.legacy_id, **rows[entry.target_pk], **own}
            else:
                if record is None:
                    continue
                canonical = {"id": entry.legacy_id}
            canonical.update(entry.note.get("original", {}))
            if record is not None:
                canonical.update(record.data)
                canonical.update(record_fps.get(str(record.pk), {}))
                if mapper.content:
                    secrets = json.loads(record.secrets or "{}")
                    canonical.update({k: v for k, v in secrets.items() if k in mapper.content})
            digest.add(canonical)
    return digest


def _fingerprints(label: str, pks: Iterable[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for pk, column, fp in LegacySealedValue.objects.filter(target=label, target_pk__in=list(pks)).values_list(
        "target_pk", "field", "fingerprint"
    ):
        out.setdefault(pk, {})[column] = fp
    return out


# --- the whole import ----------------------------------------------------------------------------------


def check_schema(source: LegacySource, report: ImportReport) -> None:
    for name, table in schema.TABLES.items():
        try:
            available = set(source.columns(name))
        except Exception:  # noqa: BLE001 - a driver error here means the table is not readable
            available = set()
        if not available:
            report.missing_tables.append(name)
            continue
        missing = [c for c in table.names if c not in available]
        if missing:
            report.missing_columns[name] = missing


_LOCK_KEY = int.from_bytes(b"mh-legacy", "big") & 0x7FFFFFFFFFFFFFFF


class ImportRunning(Exception):
    """Another import_legacy holds the lock (two at once would race for the same legacy ids)."""


@contextmanager
def import_lock() -> Iterator[None]:
    """Session-level advisory lock: one import at a time; PostgreSQL drops it if the process dies."""
    with try_advisory_lock(_LOCK_KEY) as acquired:
        if not acquired:
            raise ImportRunning("another import_legacy is running")
        yield


def run_import(
    source: LegacySource, *, dry_run: bool = False, progress: Progress | None = None, username: str | None = None
) -> ImportReport:
    """Import every table (with dry_run: only read and validate), then compare the checksums.

    With `username` (a legacy username), only that user's rows: a migration can go user by user, and
    the checksums then cover that user's rows on both sides. Re-running without it imports the rest.
    """
    if dry_run:
        return _run_import(source, dry_run=True, progress=progress, username=username)
    with import_lock():
        return _run_import(source, dry_run=False, progress=progress, username=username)


def _run_import(
    source: LegacySource, *, dry_run: bool, progress: Progress | None, username: str | None
) -> ImportReport:
    from .mappers import MAPPERS

    report = ImportReport()
    check_schema(source, report)
    if report.missing_tables:
        return report
    ctx = Context(dry_run=dry_run, report=report)
    ctx.only_username = username
    for mapper in MAPPERS:
        table_report = run_table(mapper, source, ctx, progress)
        if not dry_run and not mapper.by_design:
            table_report.target = target_digest(mapper, ctx)
        if username and ctx.only_user is None:
            report.missing_user = username
            return report
        report.tables.append(table_report)
    if not dry_run:
        _reopen_converted_users(ctx, report)
    return report


def _reopen_converted_users(ctx: Context, report: ImportReport) -> None:
    """Rows imported after their owner's first login (a re-run after a last legacy sync) are sealed
    under the legacy key, which was cleared: put it back so the next login converts them too."""
    from legacy.models import LegacyUserKey

    pending = LegacySealedValue.objects.filter(converted_at__isnull=True, error="").values("owner_id")
    for key in LegacyUserKey.objects.filter(state=LegacyUserKey.State.DONE, user_id__in=pending):
        salt, wrapped = ctx.cache.get("legacy_keys", {}).get(key.legacy_id, ("", ""))
        if salt and wrapped:
            LegacyUserKey.objects.filter(pk=key.pk).update(
                state=LegacyUserKey.State.WAITING, salt=salt, encrypted_dek=wrapped, failure=""
            )
            report.warnings.append(f"users #{key.legacy_id}: new encrypted rows; converted at the next login")
