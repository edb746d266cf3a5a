"""mail.parsing.header_block: a well-formed header block comes out as the stdlib's parser makes it.

The shortcut must be invisible (#15): wherever it answers, the Message has the stdlib's headers, in
order, byte for byte, and the stdlib finds no defect; everything irregular is left to the stdlib.
"""

from __future__ import annotations

import random
from email import policy
from email.parser import BytesParser

from mail.parsing.header_block import parse_header_block

_STDLIB = BytesParser(policy=policy.compat32)
_LINES = [
    b"Subject: Hello",
    b"Subject:Hello  ",
    b"Subject:",
    b"Subject: \t ",
    b"From: Sender <s@example.test>",
    b"From sender@example.test Mon Dec  7 10:00:00 2026",
    b"To: a@example.test,",
    b" b@example.test",
    b"\tc@example.test",
    b" ",
    b"X-Odd: a:b:c",
    b'Content-Type: multipart/mixed; boundary="b"',
    b": no name",
    b"not a header",
    b"X-\xff: eight bit name",
    b"X-Eight: \xe4\xf6 bit value",
    b"",
]
_BREAKS = [b"\r\n"] * 8 + [b"\n", b"\r"]


def _block(rng: random.Random) -> bytes:
    lines = [rng.choice(_LINES) for _ in range(rng.randint(1, 8))]
    body = b"".join(line + rng.choice(_BREAKS) for line in lines)
    return body + rng.choice([b"\r\n", b"\r\n", b"\n"])


def test_where_it_answers_it_answers_as_the_stdlib():
    rng = random.Random(15)
    answered = 0
    for _ in range(4000):
        block = _block(rng)
        quick = parse_header_block(block)
        if quick is None:
            continue
        answered += 1
        stdlib = _STDLIB.parsebytes(block, headersonly=True)
        assert stdlib.defects == [], block
        assert list(quick.raw_items()) == list(stdlib.raw_items()), block
        assert quick.get_unixfrom() is None and stdlib.get_unixfrom() is None, block
        assert quick._payload == stdlib._payload == "", block
    assert answered > 300, "the shortcut is actually taken"


def test_folded_headers_keep_their_line_breaks_as_in_the_stdlib():
    block = b"Subject: one\r\n two\r\n\tthree\r\nTo:\r\n a@example.test\r\n\r\n"
    quick = parse_header_block(block)
    assert quick is not None
    assert list(quick.raw_items()) == list(_STDLIB.parsebytes(block, headersonly=True).raw_items())
    assert quick["Subject"] == "one\r\n two\r\n\tthree"


def test_irregular_blocks_are_left_to_the_stdlib():
    for block in (
        b"From someone Mon Dec  7 10:00:00 2026\r\nSubject: x\r\n\r\n",  # envelope line
        b" continued\r\nSubject: x\r\n\r\n",  # first line a continuation
        b"Subject: x\r\nno colon here\r\n\r\n",  # not a header
        b"Subject: x\nTo: y\r\n\r\n",  # a bare LF
        b"Subject: x\r\n\n",  # not ended by CRLF CRLF
        b"X-\xff: y\r\n\r\n",  # 8-bit name
    ):
        assert parse_header_block(block) is None, block
