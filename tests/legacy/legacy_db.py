"""Build a legacy SQLite database like the legacy application wrote it (tests only).

Tables come from the same declaration the importer checks against (legacy.schema); values
are encrypted the legacy way (PBKDF2 KEK -> AES-GCM DEK -> base64(iv||ct||tag)) and passwords are
hashed the way werkzeug does, here with hashlib directly, independently of accounts.hashers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from legacy import schema

_SQL_TYPES = {
    "Integer": "INTEGER",
    "String": "VARCHAR",
    "Text": "TEXT",
    "DateTime": "DATETIME",
    "Date": "DATE",
    "Boolean": "BOOLEAN",
    "Float": "FLOAT",
    "LargeBinary": "BLOB",
}


def _seal(key: bytes, plaintext: bytes) -> str:
    iv = os.urandom(12)
    return base64.b64encode(iv + AESGCM(key).encrypt(iv, plaintext, None)).decode("ascii")


def werkzeug_hash(password: str, method: str = "scrypt") -> str:
    salt = secrets.token_hex(8)  # werkzeug: 16 characters
    if method == "scrypt":
        digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**15, r=8, p=1, maxmem=132 * 2**15 * 8)
        return f"scrypt:32768:8:1${salt}${digest.hex()}"
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 600_000)
    return f"pbkdf2:sha256:600000${salt}${digest.hex()}"


@dataclass
class LegacyUser:
    id: int
    username: str
    password: str
    dek: bytes
    totp_secret: str | None


class LegacyDB:
    def __init__(self, path: Path, tables: dict[str, schema.Table] | None = None) -> None:
        self.path = path
        self.conn = sqlite3.connect(path)
        for table in (tables or schema.TABLES).values():
            columns = []
            for c in table.columns:
                sql_type = _SQL_TYPES.get(c.declared.split("(")[0], "")
                columns.append(f'"{c.name}" {sql_type}' + (" PRIMARY KEY" if c.name == "id" else ""))
            self.conn.execute(f'create table "{table.name}" ({", ".join(columns)})')
        self.conn.commit()

    def insert(self, table: str, **values) -> int:
        names = ", ".join(f'"{k}"' for k in values)
        marks = ", ".join("?" for _ in values)
        values = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in values.items()}
        cursor = self.conn.execute(f'insert into "{table}" ({names}) values ({marks})', list(values.values()))
        self.conn.commit()
        return cursor.lastrowid

    def execute(self, sql: str, *params) -> None:
        self.conn.execute(sql, params)
        self.conn.commit()

    def add_user(
        self, username: str, password: str, *, totp: bool = True, method: str = "scrypt", **extra
    ) -> LegacyUser:
        salt = os.urandom(32)
        dek = os.urandom(32)
        kek = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000, dklen=32)
        totp_secret = base64.b32encode(os.urandom(20)).decode() if totp else None
        user_id = self.insert(
            "users",
            username=username,
            email=f"{username}@legacy.example",
            password_hash=werkzeug_hash(password, method),
            failed_login_attempts=0,
            salt=base64.b64encode(salt).decode(),
            encrypted_dek=_seal(kek, dek),
            totp_secret=totp_secret,
            totp_enabled=1 if totp else 0,
            enable_auto_assignment=0,
            created_at="2024-03-01 08:15:00.123456",
            **extra,
        )
        return LegacyUser(user_id, username, password, dek, totp_secret)

    def enc(self, user: LegacyUser, text: str) -> str:
        return _seal(user.dek, text.encode("utf-8"))

    def close(self) -> None:
        self.conn.close()


_PG_TYPES = {"Integer": "bigint", "String": "text", "Text": "text", "DateTime": "timestamp", "Date": "date",
             "Boolean": "boolean", "Float": "double precision", "LargeBinary": "bytea"}  # fmt: skip


_UNREPRESENTABLE = object()


def _pg_value(pg_type: str, value):
    from datetime import UTC, datetime

    if value is None:
        return None
    if pg_type == "boolean":
        text = str(value).lower()
        return text in ("1", "t", "true") if text in ("1", "t", "true", "0", "f", "false") else _UNREPRESENTABLE
    if pg_type == "timestamp" and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    return value


def copy_to_postgres(sqlite_path: Path, url: str) -> None:
    """The same legacy database as a legacy PostgreSQL (real booleans and timestamps), as the legacy's
    later versions stored it."""
    import psycopg

    source = sqlite3.connect(sqlite_path)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in schema.TABLES.values():
            types = {c.name: _PG_TYPES.get(c.declared.split("(")[0], "text") for c in table.columns}
            columns = ", ".join(f'"{n}" {t}' + (" primary key" if n == "id" else "") for n, t in types.items())
            conn.execute(f'create table "{table.name}" ({columns})')
            names = list(types)
            for row in source.execute(f'select {", ".join(names)} from "{table.name}"'):
                values = [_pg_value(types[name], value) for name, value in zip(names, row, strict=True)]
                if _UNREPRESENTABLE in values:
                    continue  # PostgreSQL's typed columns would have refused this row
                marks = ", ".join(["%s"] * len(names))
                conn.execute(f'insert into "{table.name}" ({", ".join(names)}) values ({marks})', values)
    source.close()
