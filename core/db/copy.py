"""Insert many new rows with PostgreSQL's COPY instead of a multi-row INSERT.

Sync stores messages in batches of up to 200 rows of ~45 columns with large encrypted bytea
values. As one INSERT that is a statement of 9,000 placeholders which Django compiles, psycopg
rewrites (too long for its statement cache) and PostgreSQL parses on every batch: 0.57 ms of
Python CPU and 1.5 ms wall per message. COPY sends the same values as a row stream: 0.21 ms CPU
and 0.6 ms wall (measured on 200-message batches of 5-50 KB mail). Sync is bound by one
process's CPU (the GIL), so that difference is throughput.

Values go through the same field methods as save() and bulk_create() (`pre_save`, then
`get_db_prep_save`), so encrypted fields are sealed exactly as they would be there and auto_now
fields are set. Like our use of bulk_create it sends no signals and returns nothing: the models
it is for have primary keys chosen before the insert (UUIDs).

The rows go in COPY's binary format, with each column's type read once from the catalogue: in
the text format every bytea value (the sealed raw source, bodies, attachments: most of the bytes)
is written as hex, twice its size, which psycopg encodes and PostgreSQL decodes again. Binary
sends the bytes as they are; 13 % of the first sync's CPU went to the text rows (#15,
docs/notes/sync-speed.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connections, models
from django.utils import timezone

#: Field classes whose pre_save is reading the attribute and whose database value is the Python value
#: itself when it already has one of these types (their get_prep_value is a to_python of it). For
#: those values copy_insert skips the two calls per column (a third of its time on 31-column rows).
_PLAIN: dict[type, tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.IntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.FloatField: (float,),
    models.UUIDField: (uuid.UUID,),
}

# (database alias, table) -> the column type oids of the model's concrete fields, in their order.
_column_types: dict[tuple[str, str], list[int]] = {}


def _types(cursor, alias: str, table: str, columns: list[str]) -> list[int]:
    """The columns' type oids, as the table has them (migrations decide them, not the fields)."""
    key = (alias, table)
    if key not in _column_types:
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
            [table],
        )
        oids = dict(cursor.fetchall())
        _column_types[key] = [oids[column] for column in columns]
    return _column_types[key]


def _plain_types(field: models.Field) -> tuple[type, ...] | None:
    """The value types that go to the database unchanged for this field, or None (always convert)."""
    if isinstance(field, models.ForeignKey):
        field = field.target_field
        if isinstance(field, models.AutoField | models.BigAutoField):
            return (int,)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return None
    return _PLAIN.get(type(field))


def _row(obj: models.Model, fields, plain, connection) -> list:
    values = obj.__dict__
    row = []
    for field, types in zip(fields, plain, strict=True):
        if types is not None:
            value = values.get(field.attname, _MISSING)
            if value is None or type(value) in types:  # exactly: a bool is no int here, a str subclass converts
                row.append(value)
                continue
        row.append(field.get_db_prep_save(field.pre_save(obj, True), connection))
    return row


_MISSING = object()


def _copy(model: type[models.Model], using: str, rows: list[list]) -> None:
    """COPY `rows` (every concrete column's database value, in field order) into the model's table.

    A list, made before the COPY starts: a field's get_db_prep_save or pre_save may query (the owner's
    data key, read again once its 60 s in this process's cache are over), and a query on the
    connection that holds a COPY open waits for the COPY's lock for ever (a first sync hung until its
    time limit). Callers bound the batch (the sync stores a few hundred messages at a time)."""
    opts = model._meta
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = [f.column for f in opts.concrete_fields]
    sql = f"COPY {quote(opts.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor:
        types = _types(cursor, using, opts.db_table, columns)
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def copy_insert(model: type[models.Model], objs: Sequence[models.Model], using: str = "default") -> None:
    """Insert unsaved instances of `model`; a duplicate key raises IntegrityError like an INSERT."""
    if not objs:
        return
    opts = model._meta
    if not isinstance(opts.pk, models.UUIDField):
        raise TypeError(f"copy_insert needs primary keys known before the insert; {opts.label} has {opts.pk}")
    connection = connections[using]
    fields = opts.concrete_fields
    plain = [_plain_types(f) for f in fields]
    _copy(model, using, [_row(obj, fields, plain, connection) for obj in objs])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def copy_insert_values(model: type[models.Model], rows: Sequence[dict], using: str = "default") -> None:
    """Insert new rows given as {attname: value}, without a model instance per row.

    For many rows of a wide model of which only a few columns vary (the sync's pending analysis
    rows: 3 of 31 columns): building an instance per row to COPY it cost more than the COPY. Every
    row names the same attnames; a column not named takes its field's default, computed once (a
    callable default such as the uuid4 of a primary key, once per row; auto_now(_add) is now).
    Values go through get_db_prep_save like copy_insert's, so an encrypted field needs its sealed
    value in the row: its plaintext default is refused (TypeError) as update() refuses it.
    """
    if not rows:
        return
    opts = model._meta
    connection = connections[using]
    fields = opts.concrete_fields
    given = rows[0].keys()
    unknown = set(given) - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"copy_insert_values: {opts.label} has no column {sorted(unknown)}")
    now = timezone.now()
    plain = [_plain_types(f) for f in fields]
    # Per column: ("row", attname), ("call", default) or ("same", prepared value).
    sources = []
    for field in fields:
        if field.attname in given:
            sources.append(("row", field.attname))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            sources.append(("same", field.get_db_prep_save(now, connection)))
        elif field.has_default() and callable(field.default) and field.default not in (list, dict):
            sources.append(("call", field.default))
        else:
            sources.append(("same", field.get_db_prep_save(field.get_default(), connection)))
    given_count = len(given)

    def values_of(row: dict) -> list:
        if len(row) != given_count:
            raise TypeError("copy_insert_values: every row names the same columns")
        values = []
        for field, types, (kind, source) in zip(fields, plain, sources, strict=True):
            if kind == "same":
                values.append(source)
                continue
            value = row[source] if kind == "row" else source()
            if types is None or not (value is None or type(value) in types):
                value = field.get_db_prep_save(value, connection)
            values.append(value)
        return values

    _copy(model, using, [values_of(row) for row in rows])
