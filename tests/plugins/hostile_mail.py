"""Hostile messages for the fuzz tests and bench/fuzz.py: real-shaped seeds, mutations, and extreme shapes.

Why a generator and not a folder of samples: a fixed corpus stops finding anything once it passes, while
mutations with a seed keep producing new breakage shapes (the test runs a fixed seed, the benchmark runs
as many as it is given) and every failure can be replayed from its seed and index alone.
"""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mail.parsing import ParsedMessage

SECRET = "Zanzibar"  # in every seed's subject and body: it must never show in a parse warning

_ALTERNATIVE = f"""From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.com>
To: alice@example.org, "Smith, Bob" <bob@example.org>
Subject: =?utf-8?b?R3LDvMOfZQ==?= {SECRET}
Date: Tue, 01 Aug 2023 10:00:00 +0200
Message-ID: <alt@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo J=C3=B6rg, the {SECRET} invoice is due on Friday.
--alt
Content-Type: text/html; charset=utf-8

<html><body><p>Hallo <b>J\u00f6rg</b>, the {SECRET} invoice <img src="cid:logo@x"></p></body></html>
--alt--
--outer
Content-Type: application/pdf; name="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="
Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

{base64.b64encode(b"%PDF-1.4 " + bytes(range(256)) * 4).decode()}
--outer
Content-Type: message/rfc822

From: inner@example.net
Subject: forwarded {SECRET}
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Gr\u00fc\u00dfe
--outer--
"""

_LATIN1 = f"""From: Fran\u00e7ois <francois@example.fr>
To: me@example.test
Subject: =?iso-8859-1?q?R=E9union_{SECRET}?=
Date: Wed, 02 Aug 2023 09:00:00 +0000
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

R\u00e9union demain \u00e0 9h, {SECRET}.
"""

_CALENDAR = f"""From: organiser@example.com
To: me@example.test
Subject: Invitation: {SECRET} planning
Date: Thu, 03 Aug 2023 08:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="cal"

--cal
Content-Type: text/plain; charset=utf-8

You are invited to {SECRET} planning.
--cal
Content-Type: text/calendar; charset=utf-8; method=REQUEST
Content-Transfer-Encoding: 7bit

BEGIN:VCALENDAR
METHOD:REQUEST
BEGIN:VEVENT
UID:1@example.com
DTSTART:20230810T090000Z
SUMMARY:{SECRET} planning
END:VEVENT
END:VCALENDAR
--cal--
"""

SEEDS: list[bytes] = [
    _ALTERNATIVE.replace("\n", "\r\n").encode("utf-8"),
    _LATIN1.replace("\n", "\r\n").encode("latin-1"),
    _CALENDAR.replace("\n", "\r\n").encode("utf-8"),
]

_CHARSETS = [b"x-unknown", b"utf-7", b"utf-16", b"utf-32-be", b"cp1252\x00", b'"', b"", b"=?", b"iso-2022-jp"]
_ENCODINGS = [b"base64", b"quoted-printable", b"x-uuencode", b"8bit", b"binary", b"gzip", b"base64; x=1"]


def _truncate(rnd: random.Random, raw: bytes) -> bytes:
    return raw[: rnd.randrange(len(raw) + 1)]


def _flip_bytes(rnd: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rnd.randint(1, 40)):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    return bytes(data)


def _insert_junk(rnd: random.Random, raw: bytes) -> bytes:
    at = rnd.randrange(len(raw) + 1)
    junk = rnd.choice([b"\x00" * 64, b"\r" * 50, b"\n--", b"=?utf-8?b?!!!?=", b"\xff\xfe" * 30, b":" * 100])
    return raw[:at] + junk + raw[at:]


def _break_boundaries(rnd: random.Random, raw: bytes) -> bytes:
    for boundary in (b"outer", b"alt", b"cal"):
        if boundary in raw:
            raw = raw.replace(b"--" + boundary, rnd.choice([b"--", b"-- " + boundary, b"--" + boundary * 2, b""]), 1)
    return raw


def _bad_charset(rnd: random.Random, raw: bytes) -> bytes:
    for known in (b"utf-8", b"iso-8859-1"):
        raw = raw.replace(b"charset=" + known, b"charset=" + rnd.choice(_CHARSETS))
    return raw


def _bad_encoding(rnd: random.Random, raw: bytes) -> bytes:
    for known in (b"quoted-printable", b"base64", b"8bit", b"7bit"):
        raw = raw.replace(b"Transfer-Encoding: " + known, b"Transfer-Encoding: " + rnd.choice(_ENCODINGS))
    return raw


def _huge_header(rnd: random.Random, raw: bytes) -> bytes:
    name, value = rnd.choice(
        [
            (b"Subject", b"=?utf-8?q?" + b"A=C3=A4" * 100_000 + b"?="),
            (b"To", b", ".join(b"user%d@example.org" % i for i in range(40_000))),
            (b"References", b" ".join(b"<r%d@example.org>" % i for i in range(30_000))),
            (b"X-Folded", b"\r\n ".join(b"x" * 70 for _ in range(20_000))),
            (b"Date", b"Mon, 99 Foo 99999 99:99:99 +9999" * 1000),
        ]
    )
    return name + b": " + value + b"\r\n" + raw


def _line_endings(rnd: random.Random, raw: bytes) -> bytes:
    return raw.replace(b"\r\n", rnd.choice([b"\n", b"\r", b"\r\r\n", b"\n\r"]))


MUTATORS: list[Callable[[random.Random, bytes], bytes]] = [
    _truncate,
    _flip_bytes,
    _insert_junk,
    _break_boundaries,
    _bad_charset,
    _bad_encoding,
    _huge_header,
    _line_endings,
]


def mutations(seed: int, count: int) -> Iterator[bytes]:
    """`count` messages, each a seed message with one to three mutations; the same seed gives the same list."""
    rnd = random.Random(seed)
    for _ in range(count):
        raw = rnd.choice(SEEDS)
        for mutate in rnd.sample(MUTATORS, rnd.randint(1, 3)):
            raw = mutate(rnd, raw) or b"\r\n"
        yield raw


def _headers(subject: str, content_type: str) -> bytes:
    return (
        f"From: hostile@example.com\r\nTo: me@example.test\r\nSubject: {subject} {SECRET}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode()


def many_parts(count: int = 100_000) -> bytes:
    """One multipart with `count` tiny text parts (about 60 bytes each)."""
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return _headers("many parts", 'multipart/mixed; boundary="b"') + part * count + b"--b--\r\n"


def deep_nesting(depth: int = 2_000) -> bytes:
    """Multiparts nested `depth` levels deep, each with its own boundary."""
    level = b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
    opening = b"".join(level % (i, i + 1) for i in range(depth))
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth + 1)))
    return _headers("deep", 'multipart/mixed; boundary="b0"') + opening + b"--b%d\r\n\r\ncore\r\n" % depth + closing


def compressed_bomb(megabytes: int = 20) -> bytes:
    """An attachment that is a tiny deflate stream of `megabytes` of zeros (a parser must not inflate it),
    beside a base64 part that really decodes to `megabytes` of data."""
    bomb = base64.encodebytes(zlib.compress(b"\0" * (megabytes << 20), 9))
    big = base64.encodebytes(b"\0" * (megabytes << 20))
    return (
        _headers("bomb", 'multipart/mixed; boundary="z"')
        + b'--z\r\nContent-Type: application/zip; name="bomb.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + bomb
        + b'\r\n--z\r\nContent-Type: application/octet-stream; name="zeros.bin"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + big
        + b"\r\n--z--\r\n"
    )


def many_headers(count: int = 50_000) -> bytes:
    return b"".join(b"X-H%d: v\r\n" % i for i in range(count)) + _headers("headers", "text/plain") + b"body\r\n"


@dataclass(frozen=True)
class Extreme:
    """A shape named in the issue, with whether a parse of it must say something was wrong."""

    name: str
    raw: bytes
    must_warn: bool


def extremes() -> list[Extreme]:
    return [
        Extreme("100,000 parts", many_parts(), must_warn=True),
        Extreme("2,000 levels of nesting", deep_nesting(), must_warn=True),
        Extreme("compressed bomb and 20 MB attachment", compressed_bomb(), must_warn=False),
        Extreme("50,000 headers", many_headers(), must_warn=False),
        Extreme("only a header line", b"Subject: x", must_warn=False),
        Extreme("empty", b"", must_warn=False),
        Extreme("binary noise", random.Random(7).randbytes(200_000), must_warn=False),
    ]


def storable_problems(parsed: ParsedMessage) -> list[str]:
    """What would stop the parse from being stored in PostgreSQL or shown safely; empty when all is well."""
    problems = []
    strings = {
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "thread_key": parsed.thread_key,
        "from_address": parsed.from_address,
        "from_name": parsed.from_name,
        "subject": parsed.subject,
        "text_body": parsed.text_body,
        "html_body": parsed.html_body,
        "list_id": parsed.list_id,
        "calendar_method": parsed.calendar_method,
    }
    for name in ("references", "reply_to", "to_addresses", "cc_addresses", "warnings"):
        strings.update({f"{name}[{i}]": value for i, value in enumerate(getattr(parsed, name))})
    for i, attachment in enumerate(parsed.attachments):
        strings[f"attachment[{i}].filename"] = attachment.filename
        strings[f"attachment[{i}].content_type"] = attachment.content_type
        if attachment.size != len(attachment.data):
            problems.append(f"attachment[{i}] size {attachment.size} != {len(attachment.data)} bytes")
    for name, value in strings.items():
        if not isinstance(value, str):
            problems.append(f"{name} is {type(value).__name__}")
        elif "\x00" in value:
            problems.append(f"{name} holds NUL")
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{name} holds a lone surrogate")
    if parsed.date is not None and parsed.date.tzinfo is None:
        problems.append("date is naive")
    problems += [f"warning leaks content: {w[:40]}" for w in parsed.warnings if SECRET.lower() in w.lower()]
    return problems
