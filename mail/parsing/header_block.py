"""A header block parsed exactly as the stdlib's compat32 parser parses it, for well-formed blocks.

Why: the MIME fast path (``mime._fast_parse``) still had the stdlib parse every header block, the
message's and each part's, and ``BytesParser.parsebytes(headersonly=True)`` runs a feed parser, a
generator and several regexes per line for what is mostly a dozen ``Name: value`` lines: about a
tenth of a sync parser's CPU (#15). A block with CRLF line ends only, whose lines are all
``Name: value`` or continuations of one, gives here the stdlib's Message, header for header
(``raw_items`` identical, no defects, empty payload). Anything else, the things the stdlib records
as defects or treats specially (an envelope ``From `` line, a first line that is a continuation,
a line that is no header, a bare CR or LF, 8-bit bytes in a name), returns None and the caller asks
the stdlib.
"""

from __future__ import annotations

import re
from email.message import Message

# The stdlib's header line (email.feedparser.headerRE) without its "From " and continuation cases,
# and with a name of at least one character (an empty one is a defect there).
_NAME = re.compile(r"[\041-\071\073-\176]+:")


def parse_header_block(block: bytes) -> Message | None:
    """The stdlib's ``BytesParser(policy=compat32).parsebytes(block, headersonly=True)`` for a
    well-formed block that ends with its blank line; None where that might differ."""
    text = block.decode("ascii", "surrogateescape")
    if not text.endswith("\r\n\r\n"):
        return None
    text = text[:-4]
    breaks = text.count("\r\n")
    if text.count("\r") != breaks or text.count("\n") != breaks:
        return None
    msg = Message()
    name = ""
    value: list[str] = []
    for line in text.split("\r\n"):
        if not line:
            return None  # a blank line inside: not a header block of its own
        if line[0] in " \t":
            if not name:
                return None
            value.append(line)
            continue
        if line.startswith("From "):
            return None
        match = _NAME.match(line)
        if match is None:
            return None
        if name:
            msg.set_raw(name, "\r\n".join(value))
        name = line[: match.end() - 1]
        # compat32's header_source_parse: the first line's value without leading blanks, the
        # continuation lines with their line breaks, no trailing line break.
        value = [line[match.end() :].lstrip(" \t")]
    if name:
        msg.set_raw(name, "\r\n".join(value))
    msg.set_payload("")
    return msg
