"""Reading the legacy database: SQLite (stdlib sqlite3, opened read-only) or PostgreSQL (psycopg).

Both give the same interface: which tables and columns exist, how many rows a table has, and its
rows in id order, streamed in batches (a legacy mailbox does not fit in memory). Values come back
as the driver returns them; legacy.normalize turns them into Python values.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol


class SourceError(Exception):
    """The legacy database cannot be opened or read (message names the problem, never a password)."""


class LegacySource(Protocol):
    label: str

    def columns(self, table: str) -> list[str]: ...

    def count(self, table: str) -> int: ...

    def batches(self, table: str, columns: list[str], size: int) -> Iterator[list[dict[str, Any]]]: ...

    def close(self) -> None: ...


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise SourceError(f"unexpected identifier {name!r}")
    return f'"{name}"'


class SqliteSource:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"no SQLite file at {path}")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self.conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{path} is not a readable SQLite database ({exc})") from None
        self.conn.row_factory = sqlite3.Row
        self.label = f"sqlite:{path.name}"

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.conn.execute(f"pragma table_info({_quote(table)})")]

    def count(self, table: str) -> int:
        return self.conn.execute(f"select count(*) from {_quote(table)}").fetchone()[0]  # noqa: S608

    def batches(self, table: str, columns: list[str], size: int) -> Iterator[list[dict[str, Any]]]:
        names = ", ".join(_quote(c) for c in columns)
        cursor = self.conn.execute(f"select {names} from {_quote(table)} order by id")  # noqa: S608
        while rows := cursor.fetchmany(size):
            yield [dict(zip(columns, tuple(row), strict=True)) for row in rows]

    def close(self) -> None:
        self.conn.close()


class PostgresSource:
    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        try:
            self.conn = psycopg.connect(url, row_factory=dict_row, autocommit=False)
        except psycopg.Error as exc:
            raise SourceError(f"cannot connect to the legacy PostgreSQL ({type(exc).__name__})") from None
        self.conn.read_only = True
        self.label = "postgresql:" + (self.conn.info.dbname or "")

    def columns(self, table: str) -> list[str]:
        with self.conn.cursor() as cur:
            cur.execute(
                "select column_name from information_schema.columns where table_schema = current_schema() "
                "and table_name = %s order by ordinal_position",
                (table,),
            )
            return [row["column_name"] for row in cur.fetchall()]

    def count(self, table: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"select count(*) as n from {_quote(table)}")  # noqa: S608
            return cur.fetchone()["n"]

    def batches(self, table: str, columns: list[str], size: int) -> Iterator[list[dict[str, Any]]]:
        names = ", ".join(_quote(c) for c in columns)
        with self.conn.cursor(name=f"legacy_{table}") as cur:  # server-side: streams
            cur.execute(f"select {names} from {_quote(table)} order by id")  # noqa: S608
            while rows := cur.fetchmany(size):
                yield [dict(row) for row in rows]

    def close(self) -> None:
        self.conn.close()


def open_source(sqlite: str | None = None, database_url: str | None = None) -> LegacySource:
    if bool(sqlite) == bool(database_url):
        raise SourceError("give exactly one of --sqlite PATH or --database-url URL")
    return SqliteSource(sqlite) if sqlite else PostgresSource(database_url)
