"""Legacy values -> Python values, the same way for both legacy databases and for the checksums.

SQLite hands back booleans as 0/1 (or 't'/'f' text when the legacy wrote them through some other
driver) and timestamps as naive text; the legacy PostgreSQL hands back bool and naive datetime. The
legacy application wrote naive timestamps in UTC (datetime.utcnow()), so a naive value is UTC.
Everything is normalised here once; the importer and the checksums both call these functions, so a
difference in the checksum is a difference in the data, not in how it was read.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

from . import schema

_TRUE = {"1", "t", "true", "y", "yes", "on"}
_FALSE = {"0", "f", "false", "n", "no", "off", ""}


class BadValue(ValueError):
    """A value that does not fit its declared column type (message names the column, never the value)."""


def to_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value in (0, 1):
            return bool(value)
        raise BadValue("boolean out of range")
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue("not a boolean")


def to_datetime(value: Any) -> datetime | None:
    """Aware UTC datetime; naive legacy values are UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:  # some SQLite writers store epoch seconds
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadValue("timestamp out of range") from None
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            result = datetime.fromisoformat(text)
        except ValueError:
            raise BadValue("not a timestamp") from None
    if result.tzinfo is None:
        return result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def to_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise BadValue("not a date") from None


def to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadValue("not an integer") from None


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadValue("not a number") from None


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def to_ciphertext(value: Any) -> str | None:
    """Legacy ciphertext as its base64 text (whitespace removed); empty means no value."""
    text = to_text(value)
    if text is None:
        return None
    text = "".join(text.split())
    return text or None


def fingerprint(ciphertext: str) -> str:
    """SHA-256 of a legacy ciphertext: identifies the value in checksums without holding it."""
    return hashlib.sha256(ciphertext.encode("ascii", "replace")).hexdigest()


_CONVERTERS = {
    schema.INTEGER: to_int,
    schema.TEXT: to_text,
    schema.DATETIME: to_datetime,
    schema.DATE: to_date,
    schema.BOOLEAN: to_bool,
    schema.FLOAT: to_float,
    schema.ENCRYPTED: to_ciphertext,
}


def convert(column_type: str, value: Any) -> Any:
    """The Python value of a legacy column; binary columns are not imported (None)."""
    converter = _CONVERTERS.get(column_type)
    return None if converter is None else converter(value)


def canonical(value: Any) -> Any:
    """A JSON-stable form for checksums and for the JSON columns that keep leftover legacy values."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value
