"""mail.parsing: raw RFC 5322 bytes to ParsedMessage, never raising, warnings without message content.

Pure functions: no database, no IMAP. Every malformed-input test asserts what is still recovered, that a
warning says what was wrong, and that the warnings do not leak the subject or body.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from mail.parsing import (
    ParsedAttachment,
    ParsedMessage,
    html_to_text,
    mime,
    normalize_subject,
    original_html,
    parse_message,
    sanitize_html,
)

SECRET = "Zanzibar"  # appears in subjects and bodies; must never appear in a warning


def crlf(text: str, encoding: str = "utf-8") -> bytes:
    """A message written with \\n in the test, sent with CRLF like real mail."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode(encoding)


def assert_storable(parsed: ParsedMessage) -> None:
    """Every string can go into PostgreSQL: no NUL, no lone surrogates."""
    strings = [
        parsed.message_id,
        parsed.in_reply_to,
        parsed.thread_key,
        parsed.from_address,
        parsed.from_name,
        parsed.subject,
        parsed.text_body,
        parsed.html_body,
        parsed.list_id,
        parsed.precedence,
        parsed.auto_submitted,
        parsed.calendar_method,
        *parsed.references,
        *parsed.reply_to,
        *parsed.to_addresses,
        *parsed.cc_addresses,
        *parsed.warnings,
    ]
    for attachment in parsed.attachments:
        strings += [attachment.filename, attachment.content_type, attachment.content_id]
        assert isinstance(attachment.data, bytes) and attachment.size == len(attachment.data)
    for value in strings:
        assert isinstance(value, str)
        assert "\x00" not in value
        value.encode("utf-8")  # raises on lone surrogates
    assert parsed.date is None or parsed.date.tzinfo is not None


def assert_clean_warnings(parsed: ParsedMessage, *secrets: str) -> None:
    for warning in parsed.warnings:
        for secret in (SECRET, *secrets):
            assert secret.lower() not in warning.lower(), warning


# --- well-formed messages ------------------------------------------------------------------------------

ALTERNATIVE = crlf(
    f"""From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg.Mueller@Example.COM>
To: alice@example.org, "Smith, Bob" <BOB@Example.org>
Cc: =?iso-8859-1?q?Fran=E7ois?= <francois@example.fr>
Reply-To: Replies <Replies@Example.COM>
Subject: =?utf-8?b?R3LDvMOfZQ==?= =?utf-8?b?IGF1cw==?= {SECRET}
Date: Tue, 01 Aug 2023 10:00:00 +0200
Message-ID: <abc@example.com>
In-Reply-To: <parent@example.com>
References: <root@example.com> <parent@example.com>
 <root@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo J=C3=B6rg,
welcome to {SECRET}.
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<html><body><p>Hallo <b>Jörg</b>,</p><p>welcome to {SECRET}.</p></body></html>
--alt--
"""
)


def test_multipart_alternative_message():
    parsed = parse_message(ALTERNATIVE)

    assert parsed.message_id == "abc@example.com"
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ["root@example.com", "parent@example.com"]
    assert parsed.thread_key == "root@example.com"
    assert parsed.date == datetime(2023, 8, 1, 8, 0, tzinfo=UTC)
    assert parsed.date.utcoffset() == timedelta(hours=2)
    assert parsed.from_address == "joerg.mueller@example.com"
    assert parsed.from_name == "Jörg Müller"
    assert parsed.to_addresses == ["alice@example.org", "bob@example.org"]
    assert parsed.cc_addresses == ["francois@example.fr"]
    assert parsed.reply_to == ["replies@example.com"]
    assert parsed.subject == f"Grüße aus {SECRET}"
    assert parsed.text_body == f"Hallo Jörg,\nwelcome to {SECRET}."
    assert parsed.html_body == f"<p>Hallo <b>Jörg</b>,</p><p>welcome to {SECRET}.</p>"
    assert not parsed.has_remote_images
    assert parsed.attachments == []
    assert parsed.warnings == []
    assert parsed.calendar_method == parsed.list_id == parsed.precedence == parsed.auto_submitted == ""
    assert_storable(parsed)


def test_html_only_message_gets_text_from_the_html():
    raw = crlf(
        """From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: text/html; charset=utf-8

<html><head><style>p { color: red }</style><title>Title</title></head>
<body><p>First   paragraph
continues.</p><div>Line one</div><div>Line two<br>Line three</div>
<ul><li>apple</li><li>pear</li></ul><script>alert(1)</script><p>5 &lt; 6 &amp; done</p></body></html>
"""
    )
    parsed = parse_message(raw)
    assert parsed.text_body == (
        "First paragraph continues.\n\nLine one\nLine two\nLine three\n\n- apple\n- pear\n\n5 < 6 & done"
    )
    assert "<script" not in parsed.html_body and "<style" not in parsed.html_body
    assert "Title" not in parsed.text_body and "color" not in parsed.text_body
    assert original_html(raw).startswith("<html><head><style>")


def test_attachments_with_rfc2231_and_encoded_word_filenames():
    pdf = b"%PDF-1.4 fake"
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=utf-8

See attached.
--mix
Content-Type: application/pdf; name*=utf-8''%C3%84pfel%20%26%20Birnen.pdf
Content-Disposition: attachment;
 filename*0*=utf-8''%C3%84pfel%20;
 filename*1*=%26%20Birnen.pdf
Content-Transfer-Encoding: base64

{base64.b64encode(pdf).decode()}
--mix
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="=?utf-8?B?R3LDvMOfZQ==?= =?utf-8?q?_=E2=82=AC.txt?="

plain bytes
--mix
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="..\\\\..\\\\Windows\\\\evil.exe"

MZ
--mix
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="../../etc/passwd"

root
--mix--
"""
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "See attached."
    names = [a.filename for a in parsed.attachments]
    assert names == ["Äpfel & Birnen.pdf", "Grüße €.txt", "evil.exe", "passwd"]
    pdf_part = parsed.attachments[0]
    assert pdf_part == ParsedAttachment(
        filename="Äpfel & Birnen.pdf",
        content_type="application/pdf",
        size=len(pdf),
        content_id="",
        is_inline=False,
        data=pdf,
    )
    assert parsed.attachments[1].data == b"plain bytes"
    assert parsed.warnings == []


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_inline_cid_images():
    png64 = base64.b64encode(PNG).decode()
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<p>Logo: <img src="cid:logo@example.com" alt="logo"> chart: <img src="cid:chart%40x"></p>
--rel
Content-Type: image/png
Content-ID: <logo@example.com>
Content-Disposition: inline; filename="logo.png"
Content-Transfer-Encoding: base64

{png64}
--rel--
--mix
Content-Type: image/png; name="chart.png"
Content-ID: <chart@x>
Content-Disposition: attachment; filename="chart.png"
Content-Transfer-Encoding: base64

{png64}
--mix
Content-Type: application/pdf; name="report.pdf"
Content-ID: <report@x>
Content-Disposition: inline; filename="report.pdf"

%PDF
--mix--
"""
    )
    parsed = parse_message(raw)
    logo, chart, report = parsed.attachments
    assert (logo.content_id, logo.is_inline, logo.data, logo.filename) == ("logo@example.com", True, PNG, "logo.png")
    assert chart.is_inline, "referenced from the HTML, whatever the disposition says (Outlook)"
    assert not report.is_inline, "a PDF with a Content-ID that nothing shows is still a file to download"
    assert 'src="cid:logo@example.com"' in parsed.html_body
    assert not parsed.has_remote_images
    assert parsed.text_body == "Logo: chart:"


def test_nested_message_rfc822_is_one_attachment():
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Subject: Fwd: inner
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

Forwarding this.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="inner.eml"

From: b@example.com
Subject: inner {SECRET}
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

inner text
--inner
Content-Type: text/html

<p>inner html</p>
--inner--
--outer--
"""
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "Forwarding this."
    assert parsed.html_body == ""
    [attachment] = parsed.attachments
    assert attachment.content_type == "message/rfc822" and attachment.filename == "inner.eml"
    assert b"Subject: inner" in attachment.data and b"inner text" in attachment.data
    assert attachment.size == len(attachment.data)
    inner = parse_message(attachment.data)
    assert inner.subject == f"inner {SECRET}" and inner.text_body == "inner text"


# --- calendar, list headers, threads --------------------------------------------------------------------

INVITE = """BEGIN:VCALENDAR
PRODID:-//Example//EN
VERSION:2.0
METHOD:{method}
BEGIN:VEVENT
UID:1@example.com
SUMMARY:Planning
END:VEVENT
END:VCALENDAR
"""


def test_calendar_request_in_a_text_calendar_part():
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain

You are invited.
--alt
Content-Type: text/calendar; charset=utf-8; method=REQUEST

{INVITE.format(method="REQUEST")}
--alt--
"""
    )
    parsed = parse_message(raw)
    assert parsed.calendar_method == "REQUEST"
    assert parsed.text_body == "You are invited."
    assert [a.content_type for a in parsed.attachments] == ["text/calendar"]


def test_calendar_cancel_in_an_ics_attachment():
    ics = base64.b64encode(crlf(INVITE.format(method="CANCEL"))).decode()
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain

Cancelled.
--mix
Content-Type: application/octet-stream; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"
Content-Transfer-Encoding: base64

{ics}
--mix--
"""
    )
    parsed = parse_message(raw)
    assert parsed.calendar_method == "CANCEL"
    assert parsed.attachments[0].filename == "invite.ics"


def test_list_and_automation_headers():
    raw = crlf(
        """From: list@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
List-Id: "Developers" <dev.lists.example.com>
List-Unsubscribe: <mailto:leave@example.com>, <https://example.com/leave>
Precedence: Bulk
Auto-Submitted: Auto-Generated

body
"""
    )
    parsed = parse_message(raw)
    assert parsed.list_id == "dev.lists.example.com"
    assert parsed.has_list_unsubscribe
    assert parsed.precedence == "bulk"
    assert parsed.auto_submitted == "auto-generated"
    plain = parse_message(crlf("From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +0000\n\nhi\n"))
    assert (plain.list_id, plain.has_list_unsubscribe, plain.precedence, plain.auto_submitted) == ("", False, "", "")


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ("Message-ID: <own@x>\nIn-Reply-To: <parent@x>\nReferences: <root@x> <parent@x>", "root@x"),
        ("Message-ID: <own@x>\nIn-Reply-To: <parent@x> (message from Bob)", "parent@x"),
        ("Message-ID: <own@x>", "own@x"),
        ("Message-ID: own-without-brackets@x", "own-without-brackets@x"),
        ("Subject: Re: AW: WG: Fwd:  Quarterly   Report", "subject:quarterly report"),
        ("Subject: RE[2]: Fw: TR: R: I: sv: Quarterly Report", "subject:quarterly report"),
        ("Subject: Quarterly Report", "subject:quarterly report"),
        ("Subject: Ireland: Report", "subject:ireland: report"),
        ("", "subject:"),
    ],
)
def test_thread_key(headers, key):
    raw = crlf(f"From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +0000\n{headers}\n\nbody\n")
    assert parse_message(raw).thread_key == key


def test_normalize_subject_is_linear_on_absurd_prefix_chains():
    assert normalize_subject("Re: " * 200_000 + "Hello") == "hello"
    assert normalize_subject("  Fwd:Re:AW:  Hello   World ") == "hello world"


def test_missing_and_odd_dates():
    missing = parse_message(crlf("From: a@example.com\nSubject: x\n\nbody\n"))
    assert missing.date is None and "missing Date header" in missing.warnings

    no_zone = parse_message(crlf("From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00\n\nbody\n"))
    assert no_zone.date == datetime(2023, 8, 1, 10, 0, tzinfo=UTC)

    minus_zero = parse_message(crlf("From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 -0000\n\nbody\n"))
    assert minus_zero.date == datetime(2023, 8, 1, 10, 0, tzinfo=UTC)

    bad_zone = parse_message(crlf("From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +9900\n\nbody\n"))
    assert bad_zone.date == datetime(2023, 8, 1, 10, 0, tzinfo=UTC)
    assert bad_zone.warnings

    garbage = parse_message(crlf(f"From: a@example.com\nDate: {SECRET} o'clock\n\nbody\n"))
    assert garbage.date is None and "unparseable Date header" in garbage.warnings
    assert_clean_warnings(garbage)


# --- malformed input: what is recovered, and a warning without content ------------------------------------


def test_empty_input():
    parsed = parse_message(b"")
    assert parsed == ParsedMessage(thread_key="subject:", warnings=parsed.warnings)
    assert "empty message" in parsed.warnings
    assert_storable(parsed)


def test_binary_garbage():
    garbage = random.Random(7).randbytes(5000)
    parsed = parse_message(garbage)
    assert parsed.warnings
    assert_storable(parsed)
    nul_and_ff = parse_message(b"\x00\xff\xfe garbage without headers")
    assert "garbage without headers" in nul_and_ff.text_body
    assert any("MissingHeaderBodySeparatorDefect" in w for w in nul_and_ff.warnings)
    assert_clean_warnings(nul_and_ff, "garbage")
    assert_storable(nul_and_ff)


def test_truncated_multipart_keeps_the_parts_before_the_cut():
    attachment = base64.b64encode(os.urandom(3000)).decode()
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Subject: {SECRET}
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain

The body about {SECRET}.
--mix
Content-Type: application/pdf; name="cut.pdf"
Content-Transfer-Encoding: base64

{attachment[:1001]}"""
    )
    parsed = parse_message(raw)
    assert parsed.subject == SECRET
    assert parsed.text_body == f"The body about {SECRET}."
    assert parsed.attachments[0].filename == "cut.pdf" and 700 <= parsed.attachments[0].size <= 750
    assert any("CloseBoundaryNotFoundDefect" in w for w in parsed.warnings)
    assert any("base64" in w for w in parsed.warnings)
    assert_clean_warnings(parsed)


def test_multipart_without_boundary_parameter_is_recovered():
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/alternative

--guessme
Content-Type: text/plain

Plain {SECRET}
--guessme
Content-Type: text/html

<p>HTML {SECRET}</p>
--guessme--
"""
    )
    parsed = parse_message(raw)
    assert parsed.text_body == f"Plain {SECRET}"
    assert parsed.html_body == f"<p>HTML {SECRET}</p>"
    assert any("NoBoundaryInMultipartDefect" in w for w in parsed.warnings)
    assert any("guessed" in w for w in parsed.warnings)
    assert_clean_warnings(parsed)


def test_multipart_with_wrong_boundary_and_plain_text_body():
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/mixed; boundary="declared"

Just text about {SECRET}, no parts at all.
"""
    )
    parsed = parse_message(raw)
    assert parsed.text_body == f"Just text about {SECRET}, no parts at all."
    assert any("StartBoundaryNotFoundDefect" in w for w in parsed.warnings)
    assert_clean_warnings(parsed)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_raw_8bit_headers(encoding):
    raw = crlf(
        f"From: Jörg Müller <j@example.com>\nSubject: Ümlaut {SECRET} straße\nDate: Tue, 01 Aug 2023 10:00:00 +0000\n"
        "Content-Type: text/plain\n\nbody\n",
        encoding,
    )
    parsed = parse_message(raw)
    assert parsed.subject == f"Ümlaut {SECRET} straße"
    assert parsed.from_name == "Jörg Müller" and parsed.from_address == "j@example.com"
    assert parsed.text_body == "body"
    if encoding == "latin-1":
        assert any("header Subject" in w and "cp1252" in w for w in parsed.warnings)
    else:
        assert parsed.warnings == [], "raw UTF-8 headers are legal (RFC 6532)"
    assert_clean_warnings(parsed, "Ümlaut", "straße")


def test_unknown_charsets_in_body_and_encoded_words():
    raw = crlf(
        "From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +0000\n"
        "Subject: =?x-unknown?B?SGVsbG8=?= =?x-foo?q?W=F6rld?=\n"
        "Content-Type: text/plain; charset=x-nonsense\n\nbody \xe4\xf6\xfc\n",
        "latin-1",
    )
    parsed = parse_message(raw)
    assert parsed.subject == "HelloWörld"
    assert parsed.text_body == "body äöü"
    assert "unknown charset 'x-nonsense' in part 0, decoded as cp1252" in parsed.warnings
    assert any("'x-foo'" in w for w in parsed.warnings)
    assert_clean_warnings(parsed, "body", "Hello", "rld")


@pytest.mark.parametrize(
    ("declared", "body", "expected", "fallback"),
    [
        ("us-ascii", "café ✓".encode(), "café ✓", "utf-8"),
        ("utf-8", "café".encode("latin-1"), "café", "cp1252"),
        ("utf-8", b"\x80 euro in cp1252", "€ euro in cp1252", "cp1252"),
        ("iso-8859-1", b"\x93quoted\x94", "\u201cquoted\u201d", None),  # really cp1252, as everywhere
        ("unknown-8bit", "naïve".encode(), "naïve", None),
        ("x-mac-roman", b"\x8a", "ä", None),  # Python knows it without the x-
        ("unicode_escape", b"\\u0041", "\\u0041", "utf-8"),  # a codec that would interpret escapes
        ("", "naïve".encode(), "naïve", None),
    ],
)
def test_lying_and_unusual_charsets(declared, body, expected, fallback):
    charset = f"; charset={declared}" if declared else ""
    raw = crlf(f"From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +0000\nContent-Type: text/plain{charset}\n\n")
    parsed = parse_message(raw + body + b"\r\n")
    assert parsed.text_body == expected
    if fallback:
        assert any(f"decoded as {fallback}" in w and declared in w for w in parsed.warnings), parsed.warnings
    else:
        assert parsed.warnings == []
    assert_clean_warnings(parsed, "caf", "quoted", "naïve", "euro")


def test_broken_base64_and_quoted_printable():
    text = f"Hello {SECRET}, this is a longer text to encode."
    b64 = base64.b64encode(text.encode()).decode()
    raw = crlf(
        f"""From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

{b64.rstrip("=")[:-1]}
--mix
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 with a broken =ZZ escape and a soft=
 break about {SECRET}
--mix
Content-Type: application/octet-stream; name="x.bin"
Content-Transfer-Encoding: base64\x20

{base64.b64encode(b"first block").decode()}
{base64.b64encode(b"+second block").decode()}
--mix--
"""
    )
    parsed = parse_message(raw)
    first, second = parsed.text_body.split("\n\n")
    assert first.startswith(f"Hello {SECRET}, this is a longer text to encod")
    assert second == f"Café with a broken =ZZ escape and a soft break about {SECRET}"
    # "base64 " (trailing space) still counts as base64; separately encoded blocks are all decoded.
    assert parsed.attachments[0].data == b"first block+second block"
    assert any("invalid base64 padding in part 1" in w for w in parsed.warnings)
    assert any("invalid quoted-printable data in part 2" in w for w in parsed.warnings)
    assert_clean_warnings(parsed, "Hello", "Caf", "escape")


def test_nul_bytes_and_lone_surrogates_are_made_storable():
    raw = crlf(
        "From: a@example.com\nDate: Tue, 01 Aug 2023 10:00:00 +0000\nSubject: a\x00b =?utf-7?q?+2D0-?=\n"
        "Content-Type: text/plain; charset=utf-7\n\nx\x00y +2D0-\n"
    )
    parsed = parse_message(raw)
    assert parsed.subject == "ab \ufffd"  # UTF-7 can encode a lone surrogate, PostgreSQL cannot store one
    assert parsed.text_body == "xy \ufffd"
    assert_storable(parsed)


def test_hostile_structures_are_bounded():
    deep = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(2000))
    parsed = parse_message(deep + b"\r\nleaf\r\n")
    assert parsed.warnings
    assert_storable(parsed)

    many = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    many += b"".join(b"--b\r\nContent-Type: image/png\r\n\r\nx\r\n" for _ in range(3000)) + b"--b--\r\n"
    parsed = parse_message(many)
    assert len(parsed.attachments) < 1000 and any("MIME parts" in w for w in parsed.warnings)

    long_to = b"From: a@b\r\nTo: " + b", ".join(b"user%d@example.com" % i for i in range(100_000)) + b"\r\n\r\nx"
    started = time.perf_counter()
    parsed = parse_message(long_to)
    assert time.perf_counter() - started < 5
    assert 1000 < len(parsed.to_addresses) < 100_000 and any("too long" in w for w in parsed.warnings)


def test_warnings_are_capped():
    raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    raw += b"".join(b"--b\r\nContent-Type: text/plain; charset=x-bad%d\r\n\r\nt\xe4\r\n" % i for i in range(200))
    raw += b"--b--\r\n"
    parsed = parse_message(raw)
    assert len(parsed.warnings) == 51 and parsed.warnings[-1] == "further warnings omitted"


def test_internal_failure_still_returns_a_message(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mime, "_walk", explode)
    parsed = parse_message(ALTERNATIVE)
    assert parsed.subject == f"Grüße aus {SECRET}" and parsed.thread_key == "root@example.com"
    assert "could not parse body: RuntimeError" in parsed.warnings

    monkeypatch.setattr(mime, "_parse_structure", explode)
    parsed = parse_message(ALTERNATIVE)
    assert parsed.warnings == ["could not parse: RuntimeError"]
    assert parsed.subject == "" and parsed.attachments == []


@pytest.mark.slow
def test_25_mb_message_parses_in_seconds():
    blob = os.urandom(25 * 1024 * 1024)
    encoded = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    raw = (
        crlf(
            """From: a@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Subject: big
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain

See the attachment.
--mix
Content-Type: application/octet-stream; name="big.bin"
Content-Disposition: attachment; filename="big.bin"
Content-Transfer-Encoding: base64

"""
        )
        + encoded
        + b"--mix--\r\n"
    )
    started = time.perf_counter()
    parsed = parse_message(raw)
    fast = time.perf_counter() - started
    assert parsed.text_body == "See the attachment."
    assert parsed.attachments[0].size == len(blob) and parsed.attachments[0].data == blob
    assert parsed.warnings == []

    started = time.perf_counter()
    truncated = parse_message(raw[: -len(b"--mix--\r\n")])  # no close delimiter: the stdlib parser's way
    slow = time.perf_counter() - started
    assert truncated.attachments[0].data == blob
    assert fast < 5 and slow < 10, (fast, slow)


# --- HTML sanitising ------------------------------------------------------------------------------------


def test_sanitize_html_removes_active_content():
    dirty = (
        "<style>body { display: none }</style>"
        '<p style="position:fixed" class="x" id="y" onclick="steal()">Hi <script>alert(1)</script></p>'
        '<img src="x" onerror="alert(1)">'
        '<a href="javascript:alert(1)">js</a><a href=" JaVa&#x09;script:alert(1)">js2</a>'
        '<a href="data:text/html,&lt;script&gt;">data</a><a href="d&#x09;ata:text/html,x">data2</a>'
        '<iframe src="https://evil.example/"></iframe><object data="x"></object>'
        '<form action="https://evil.example/"><input name="password"></form>'
        '<svg><script>alert(1)</script></svg><meta http-equiv="refresh" content="0;url=https://evil.example/">'
        '<a href="https://ok.example/page">ok</a><a href="mailto:someone@example.com">mail</a>'
    )
    clean, remote = sanitize_html(dirty)
    lowered = clean.lower()
    for forbidden in ("<script", "alert", "onerror", "onclick", "javascript", "style", "class=", "id=", "<iframe",
                      "<object", "<form", "<input", "<svg", "<meta", "data:", "display"):  # fmt: skip
        assert forbidden not in lowered, forbidden
    assert '<a href="https://ok.example/page" target="_blank" rel="noopener noreferrer">ok</a>' in clean
    assert '<a href="mailto:someone@example.com" target="_blank" rel="noopener noreferrer">mail</a>' in clean
    assert not remote


def test_sanitize_html_remote_and_inline_images():
    html = (
        '<img src="https://tracker.example/p.gif" alt="pixel" width="1">'
        '<img src="//tracker.example/q.gif">'
        '<img src="CID:logo@example.com" alt="logo">'
        '<img src="data:image/png;base64,iVBORw0KGgo=">'
        '<img src="data:image/svg+xml;base64,PHN2Zz4=">'
        '<img src="relative/path.png">'
    )
    clean, remote = sanitize_html(html)
    assert remote
    assert "tracker" not in clean and '<img alt="pixel" width="1">' in clean
    assert '<img src="cid:logo@example.com" alt="logo">' in clean
    assert '<img src="data:image/png;base64,iVBORw0KGgo=">' in clean
    assert "svg" not in clean and "relative" not in clean

    allowed, remote = sanitize_html(html, allow_remote_images=True)
    assert remote
    assert '<img src="https://tracker.example/p.gif" alt="pixel" width="1">' in allowed
    assert '<img src="https://tracker.example/q.gif">' in allowed

    assert sanitize_html("<p>no images</p>") == ("<p>no images</p>", False)
    assert sanitize_html("") == ("", False)


def test_message_with_remote_images_can_be_reshown_with_them():
    raw = crlf(
        """From: news@example.com
Date: Tue, 01 Aug 2023 10:00:00 +0000
Content-Type: text/html; charset=utf-8

<p>News</p><img src="https://tracker.example/open.gif?id=1&amp;u=2" alt="">
"""
    )
    parsed = parse_message(raw)
    assert parsed.has_remote_images and "tracker" not in parsed.html_body
    shown, remote = sanitize_html(original_html(raw), allow_remote_images=True)
    assert remote and 'src="https://tracker.example/open.gif?id=1&amp;u=2"' in shown


def test_html_to_text_keeps_structure():
    assert html_to_text("<h1>Title</h1><p>a<br>b</p><table><tr><td>x</td><td>y</td></tr></table>") == (
        "Title\n\na\nb\n\nx y"
    )
    assert html_to_text("") == ""


def test_quoted_printable_decodes_and_warns_as_before_the_shortcuts():
    """Quoted-printable is a2b_qp's result, with the invalid-escape warning exactly when the output has
    more "=" than the input encoded (the check skips its counts when there is no "=", #15); and line
    ends become LF as replace("\\r\\n", "\\n").replace("\\r", "\\n") made them (_plain, one regex)."""
    rng = random.Random(15)
    pieces = [b"=", b"\r", b"\n", b"=\r\n", b"=\n", b"=\r", b"a", b" ", b"3D", b"3d", b"\t", b"_", b"==", b"=ZZ"]
    for _ in range(5000):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        warnings = mime._Warnings()
        expected = binascii.a2b_qp(raw)
        assert mime._decode_cte(raw, "quoted-printable", "part 1", warnings) == expected, raw
        invalid = expected.count(b"=") > raw.count(b"=3D") + raw.count(b"=3d")
        assert warnings.items == (["invalid quoted-printable data in part 1, kept as-is"] if invalid else []), raw
        text = raw.decode("ascii")
        assert mime._plain(text) == text.replace("\r\n", "\n").replace("\r", "\n"), raw


def test_plain_address_lists_are_read_as_the_stdlib_reads_them():
    """The regex for plain addresses (#15) gives getaddresses()' pairs wherever it answers."""
    from email.utils import getaddresses

    from mail.parsing.headers import _simple_addresses

    rng = random.Random(16)
    pieces = ["Jane", "Doe", "J.", "=?utf-8?q?J=C3=B6rg?=", " ", "\t", "<", ">", "@", ".", ",", '"', "(c)"]
    pieces += ["a", "b.c", "example.test", "x-y", "+tag", "ö", ":", ";", "[1.2.3.4]", "a@b.example", "<a@b.test>"]
    answered = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        quick = _simple_addresses(text)
        if quick is not None:
            answered += 1
            assert quick == getaddresses([text]), text
    for text in ("Sender 7 <sender@example.test>", "me@example.test", "A <a@x.test>, b@y.test,c.d@z.test"):
        assert _simple_addresses(text) == getaddresses([text])
    assert answered > 200, "the shortcut is actually taken"


# --- never raises --------------------------------------------------------------------------------------


def _long_lines() -> bytes:
    """Long lines of plain text, sent quoted-printable with soft line breaks only (as Python's
    EmailMessage and many clients do), beside the same text as HTML and an attachment."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Sender <s@example.test>", "me@example.test", "long lines"
    text = " ".join(random.Random(3).choice(["alpha", "invoice", "tomorrow"]) for _ in range(400))
    msg.set_content(f"Hello,\n\n{text}\n")
    msg.add_alternative(f"<p>Hello</p><p>{text}</p>", subtype="html")
    msg.add_attachment(b"\x01" * 300, maintype="application", subtype="octet-stream", filename="f.bin")
    return bytes(msg)


def _corpus() -> list[bytes]:
    return [
        ALTERNATIVE,
        _long_lines(),
        crlf("From: a@example.com\nSubject: plain\n\nJust text.\n"),
        crlf(
            'Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/html\n\n<p>x</p>\n--m\n'
            "Content-Type: image/png\nContent-ID: <i@x>\nContent-Transfer-Encoding: base64\n\n"
            + base64.b64encode(PNG).decode()
            + "\n--m\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner\n--m--\n"
        ),
        crlf(
            "Subject: =?utf-8?q?a?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
            "quoted-printable\n\nCaf=C3=A9 =\nsoft\n"
        ),
    ]


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(data) + 1)
        choice = rng.random()
        if choice < 0.3:
            del data[position : position + rng.randint(1, 40)]
        elif choice < 0.6:
            data[position:position] = rng.choice(
                [b"\r\n", b"\n", b"--", b"--m\r\n", b"=?", b"?=", b"=", b"\xff\xfe", b"\x00", b"<", b">", b":", b";"]
            )
        elif choice < 0.9 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        else:
            data[position:position] = rng.randbytes(rng.randint(1, 30))
    return bytes(data)


def test_fuzz_never_raises():
    """hypothesis is not installed in this venv, so: a seeded loop of random and mutated inputs."""
    rng = random.Random(20230801)
    corpus = _corpus()
    cases = [rng.randbytes(rng.randint(0, 3000)) for _ in range(150)]
    cases += [_mutate(rng, rng.choice(corpus)) for _ in range(450)]
    for raw in cases:
        parsed = parse_message(raw)
        assert isinstance(parsed, ParsedMessage)
        assert_storable(parsed)
        assert all(isinstance(w, str) for w in parsed.warnings)
        assert isinstance(original_html(raw), str)


def test_fast_path_gives_the_same_result_as_the_stdlib_parser(monkeypatch):
    """The bytes.find shortcut for well-formed MIME must be invisible: same output as the stdlib parser."""
    rng = random.Random(5)
    cases = _corpus() + [_mutate(rng, rng.choice(_corpus())) for _ in range(300)]
    fast_results = [parse_message(raw) for raw in cases]
    assert sum(mime._fast_parse(raw) is not None for raw in cases) > 60, "the shortcut is actually used"
    monkeypatch.setattr(mime, "_fast_parse", lambda *args, **kwargs: None)
    for raw, fast in zip(cases, fast_results, strict=True):
        assert parse_message(raw) == fast, raw[:300]
