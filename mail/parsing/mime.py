"""The MIME walk and the entry points: raw bytes to a ``ParsedMessage``.

Holds the structure parser (the stdlib's ``compat32`` parser, with a ``bytes.find`` shortcut for
well-formed mail), transfer decoding (base64, quoted-printable, uuencode), the classification of every
part into bodies and attachments, and ``parse_message`` / ``original_html``, which tie the other modules
together. It is the top floor of the package: it imports the others, none of them imports it.
"""

from __future__ import annotations

import binascii
import html as html_lib
import re
from dataclasses import dataclass, field
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesFeedParser, BytesParser, Parser
from io import BytesIO
from urllib.parse import unquote

from .charsets import _clean, _decode_bytes, _decode_words, _fix_8bit, _to_bytes, _unfold
from .header_block import parse_header_block
from .headers import _fill_headers, _msg_id, _thread_key
from .html_text import _sanitized_html_to_text
from .limits import _CALENDAR_SCAN, _MAX_DEPTH, _MAX_FILENAME, _MAX_PARTS
from .results import ParsedAttachment, ParsedMessage, _Warnings
from .sanitize import sanitize_html

_COMPAT32 = email_policy.compat32
_BYTES_PARSER = BytesParser(policy=_COMPAT32)
_STR_PARSER = Parser(policy=_COMPAT32)


# --- transfer encodings ------------------------------------------------------------------------------

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64_ALPHABET = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_NOT_B64_OR_PAD = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_B64_VALID = _B64_ALPHABET + b"= \t\r\n\x0b\x0c"
_B64_BLOCK = re.compile(rb"([A-Za-z0-9+/]+)(=*)")


def _decode_base64(raw: bytes, where: str, warnings: _Warnings) -> bytes:
    """Base64 with the fast C decoder, falling back to block-wise decoding.

    ``binascii.a2b_base64`` (like the email package) stops at the first ``=``: bodies made of several
    separately encoded blocks would lose everything after the first one, so those, and bodies with bad
    padding, are decoded block by block. What follows the padding only counts as more base64 if it looks
    like it (no spaces or punctuation, whole 4-character groups): list servers append plain-text footers
    to base64 parts, and those must not become garbage bytes at the end of an attachment.
    """
    if raw.translate(None, _B64_VALID):
        warnings.add(f"invalid characters in base64 data in {where}, ignored")
    try:
        data: bytes | None = binascii.a2b_base64(raw)
    except binascii.Error:
        data = None
    if data is not None:
        pad = raw.find(b"=")
        if pad == -1:
            return data
        tail = raw[pad:].translate(None, b"\r\n").lstrip(b"=")
        if not tail.translate(None, b" \t"):
            return data
        if tail.translate(None, _B64_ALPHABET + b"=") or len(tail) % 4:
            warnings.add(f"text after the end of the base64 data in {where}, ignored")
            return data
    clean = raw.translate(None, _NOT_B64_OR_PAD)
    blocks = []
    bad = data is None
    for match in _B64_BLOCK.finditer(clean):
        block, padding = match.group(1), match.group(2)
        extra = len(block) % 4
        if extra == 1:
            block = block[:-1]
            bad = True
        elif extra:
            bad = bad or not padding
            block += b"=" * (4 - extra)
        if block:
            blocks.append(binascii.a2b_base64(block))
    if bad:
        warnings.add(f"invalid base64 padding in {where}, decoded what was possible")
    return b"".join(blocks)


def _decode_uu(raw: bytes, where: str, warnings: _Warnings) -> bytes:
    """uuencode (still sent by a few ancient gateways); the stdlib ``uu`` module is deprecated."""
    out = bytearray()
    started = False
    for line in raw.splitlines():
        if not started:
            started = line.startswith(b"begin")
            continue
        if line.strip() in (b"end", b"`", b""):
            if line.strip() == b"end":
                break
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            try:  # trailing garbage after the data (same workaround as the old uu module)
                out += binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3])
            except (binascii.Error, IndexError):
                warnings.add(f"invalid uuencoded data in {where}")
    if not started:
        warnings.add(f"invalid uuencoded data in {where}, used as-is")
        return raw
    return bytes(out)


def _first_raw(part: Message, name: str) -> str:
    """A header of a MIME part as an unfolded string ("" if missing), bypassing compat32's Header objects."""
    for key, value in part.raw_items():
        if str(key).lower() == name:
            return _unfold(value if isinstance(value, str) else str(value))
    return ""


def _raw_payload(part: Message) -> object:
    """The payload exactly as parsed.

    Deliberately not ``get_payload()``: for a payload containing 8-bit bytes that method returns text
    already decoded with the *declared* charset and errors="replace" (us-ascii if none is declared), which
    destroys exactly the bytes the charset fallback needs. ``_payload`` is the stored value (a str with
    surrogate escapes, or a list of parts) in every Python 3 version; the leaves of ``_fast_parse`` hold
    the message's bytes there instead.
    """
    return getattr(part, "_payload", None)


def _payload_bytes(part: Message, where: str, warnings: _Warnings) -> bytes:
    """Decoded payload of a leaf part; decoded exactly once (attachments can be tens of megabytes)."""
    payload = _raw_payload(part)
    if isinstance(payload, str):
        raw = _to_bytes(payload)
    elif isinstance(payload, bytes | bytearray):
        raw = bytes(payload)
    else:
        return b""
    return _decode_cte(raw, _cte(part), where, warnings)


def _cte(part: Message) -> str:
    """Content-Transfer-Encoding, tolerant of parameters, quotes and trailing junk ("base64 ")."""
    return _first_raw(part, "content-transfer-encoding").split(";", 1)[0].strip().strip("\"'").lower()


def _decode_cte(raw: bytes, cte: str, where: str, warnings: _Warnings) -> bytes:
    if cte == "base64":
        return _decode_base64(raw, where, warnings)
    if cte == "quoted-printable":
        data = binascii.a2b_qp(raw)
        # a2b_qp keeps invalid escapes ("=ZZ") as they are, so the output has more "=" than the input
        # encoded as "=3D"; two C-level counts instead of a regex visit to every "=" (3x faster), and
        # none when the output has no "=" at all (plain text: the three counts cost 3x a2b_qp, #15).
        if b"=" in data and data.count(b"=") > raw.count(b"=3D") + raw.count(b"=3d"):
            warnings.add(f"invalid quoted-printable data in {where}, kept as-is")
        return data
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return _decode_uu(raw, where, warnings)
    if cte not in ("", "7bit", "8bit", "binary", "7-bit", "8-bit"):
        warnings.add(f"unknown Content-Transfer-Encoding in {where}, used as-is")
    return raw


# --- MIME parts --------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]{1,40})", re.I)
_CALENDAR_METHOD = re.compile(rb"^METHOD[^:\r\n]{0,100}:[ \t]*([A-Za-z][A-Za-z0-9-]{0,19})", re.M | re.I)
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"})
_BOUNDARY_LINE = re.compile(r"^--([^\s][^\r\n]{0,200}?)[ \t]*\r?$", re.M)
_SAFE_MULTIPART = re.compile(r"multipart/[a-z0-9.+_-]{1,40}")
_VALID_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}")
_CID_SRC = re.compile(r'src="cid:([^"]*)"')  # on sanitised HTML, where the scheme is normalised


def _sanitise_filename(name: str) -> str:
    """Last path component, no control characters, at most 255 characters (extension kept)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip()
    if name in (".", ".."):
        return ""
    if len(name) <= _MAX_FILENAME:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= 16:
        return stem[: _MAX_FILENAME - len(ext) - 1] + "." + ext
    return name[:_MAX_FILENAME]


def _filename(part: Message, where: str, warnings: _Warnings) -> str:
    """Filename from Content-Disposition or Content-Type; RFC 2231 is handled by the library, the
    (non-standard but ubiquitous) encoded words and raw 8-bit names here."""
    try:
        name = part.get_filename()
    except Exception:
        warnings.add(f"unreadable filename in {where}")
        return ""
    if not name:
        return ""
    name = _fix_8bit(str(name), f"filename of {where}", warnings)
    return _sanitise_filename(_decode_words(name, f"filename of {where}", warnings))


def _content_id(part: Message, where: str, warnings: _Warnings) -> str:
    value = _first_raw(part, "content-id")
    if not value:
        return ""
    return _msg_id(_fix_8bit(value, f"Content-ID of {where}", warnings))


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return charset if isinstance(charset, str) else None


def _calendar_method(data: bytes, part: Message) -> str:
    """iTIP METHOD (REQUEST, REPLY, CANCEL ...) from the VCALENDAR, else from Content-Type's method=."""
    match = _CALENDAR_METHOD.search(data, 0, _CALENDAR_SCAN)
    if match:
        return match.group(1).decode("ascii").upper()
    try:
        method = part.get_param("method")
    except Exception:
        return ""
    if isinstance(method, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,19}", method.strip()):
        return method.strip().upper()
    return ""


def _serialise(msg: Message) -> bytes:
    """Bytes of an attached message (the library parsed it into a tree; we store it as a file)."""
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0, policy=_COMPAT32).flatten(msg, linesep="\r\n")
        return buffer.getvalue()
    except Exception:
        try:
            return _to_bytes(msg.as_string())
        except Exception:
            return b""


def _guess_children(part: Message, content_type: str) -> list[Message]:
    """Recover a multipart whose boundary parameter is missing or wrong.

    Some generators forget the boundary (or quote it wrongly); the parser then keeps the whole body as
    one string. The first ``--something`` line is almost always the real boundary, so reparse with it.
    """
    payload = _raw_payload(part)
    if not isinstance(payload, str) or "--" not in payload:
        return []
    match = _BOUNDARY_LINE.search(payload)
    if match is None:
        return []
    boundary = match.group(1)
    if boundary.endswith("--"):
        boundary = boundary[:-2]
    if not boundary or '"' in boundary or "\\" in boundary:
        return []
    if not _SAFE_MULTIPART.fullmatch(content_type):
        content_type = "multipart/mixed"
    reparsed = _STR_PARSER.parsestr(f'Content-Type: {content_type}; boundary="{boundary}"\n\n' + payload)
    if not reparsed.is_multipart():
        return []
    return [child for child in reparsed.get_payload() if isinstance(child, Message)]


@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[tuple[ParsedAttachment, str, bool]] = field(default_factory=list)  # (part, disposition, related)
    calendar_method: str = ""


def _walk(msg: Message, warnings: _Warnings) -> _Body:
    """Classify every MIME part, depth first in document order, iteratively (no recursion limit games).

    Bodies are the text/plain and text/html parts that are not attachments; several of them (e.g. a
    mailing-list footer in its own part, Apple Mail's HTML split around inline images) are joined.
    Attached messages are kept whole as one attachment rather than mixed into this message's body.
    """
    body = _Body()
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    index = -1
    while stack:
        part, depth, in_related = stack.pop()
        index += 1
        if index >= _MAX_PARTS:
            warnings.add(f"more than {_MAX_PARTS} MIME parts, the rest were ignored")
            break
        where = f"part {index}"
        try:
            for defect in getattr(part, "defects", ()):
                warnings.add(f"malformed MIME structure: {type(defect).__name__} in {where}")
            content_type = part.get_content_type()
            if not _VALID_CONTENT_TYPE.fullmatch(content_type):
                content_type = "text/plain"  # RFC 2045 5.2: an invalid Content-Type means text/plain
            maintype, _, subtype = content_type.partition("/")
            if part.is_multipart() and maintype != "message":
                children = [child for child in part.get_payload() if isinstance(child, Message)]
            elif maintype == "multipart":
                children = _guess_children(part, content_type)
                if children:
                    warnings.add(f"guessed the missing multipart boundary in {where}")
            else:
                children = None
            if children is not None:
                if children and depth >= _MAX_DEPTH:
                    warnings.add(f"MIME nesting deeper than {_MAX_DEPTH} levels, inner parts ignored")
                    continue
                if children:
                    related = content_type == "multipart/related"
                    stack.extend((child, depth + 1, related) for child in reversed(children))
                    continue
                # A multipart without usable parts: its body is the best text we have.
                data = _payload_bytes(part, where, warnings)
                if data.strip():
                    body.texts.append(_decode_bytes(data, _charset(part), where, warnings))
                continue
            _leaf(part, index, in_related, content_type, body, warnings)
        except Exception as exc:  # one bad part must not lose the others
            warnings.add(f"could not parse {where}: {type(exc).__name__}")
    return body


def _leaf(part: Message, index: int, in_related: bool, content_type: str, body: _Body, warnings: _Warnings) -> None:
    where = f"part {index}"
    maintype, _, subtype = content_type.partition("/")
    disposition = _first_raw(part, "content-disposition").split(";", 1)[0].strip().lower()
    filename = _filename(part, where, warnings)

    if maintype == "message":
        payload = _raw_payload(part)
        if isinstance(payload, list):
            data = b"".join(_serialise(sub) for sub in payload if isinstance(sub, Message))
            cte = _cte(part)
            if cte in ("base64", "quoted-printable"):
                # Illegal for message/* but sent anyway: the library "parsed" the encoded text as a
                # header-less message, so its serialisation is that text after one blank line.
                warnings.add(f"encoded message/* part in {where}")
                data = _decode_cte(data.lstrip(b"\r\n"), cte, where, warnings)
        else:
            data = _payload_bytes(part, where, warnings)
    else:
        data = _payload_bytes(part, where, warnings)

    if (
        maintype == "text"
        and subtype in ("plain", "html")
        and (index == 0 or (disposition != "attachment" and not filename))
    ):
        charset = _charset(part)
        if charset is None and subtype == "html":
            meta = _META_CHARSET.search(data, 0, 4096)
            if meta:
                charset = meta.group(1).decode("ascii")
        text = _decode_bytes(data, charset, where, warnings)
        (body.texts if subtype == "plain" else body.htmls).append(text)
        return

    if not body.calendar_method and (content_type in _CALENDAR_TYPES or filename.lower().endswith((".ics", ".vcs"))):
        body.calendar_method = _calendar_method(data, part)
    attachment = ParsedAttachment(
        filename=filename,
        content_type=content_type,
        size=len(data),
        content_id=_content_id(part, where, warnings),
        is_inline=False,
        data=data,
    )
    body.attachments.append((attachment, disposition, in_related))


def _mark_inline(body: _Body, clean_html: str) -> list[ParsedAttachment]:
    """Decide which attachments are shown inside the body rather than listed as files.

    A part referenced from the (sanitised) HTML by ``cid:`` is inline whatever its disposition says
    (Outlook marks such images as attachments). Otherwise a part with a Content-ID and inline (or no)
    disposition inside multipart/related, or an image explicitly inline with a Content-ID, is inline.
    """
    referenced: set[str] = set()
    if 'src="cid:' in clean_html:
        referenced = {unquote(html_lib.unescape(ref)) for ref in _CID_SRC.findall(clean_html)}
    result = []
    for attachment, disposition, in_related in body.attachments:
        cid = attachment.content_id
        if cid and cid in referenced:
            attachment.is_inline = True
        elif cid and disposition != "attachment":
            is_image = attachment.content_type.startswith("image/")
            attachment.is_inline = in_related or (is_image and disposition == "inline")
        result.append(attachment)
    return result


_LINE_END = re.compile("\r\n?")


def _plain(text: str) -> str:
    """Line ends as LF: CRLF and a lone CR each become one LF. One regex pass, not
    ``replace("\\r\\n", "\\n").replace("\\r", "\\n")`` (same result): str.replace searches for a
    two-character pattern several times slower than re finds its one-character prefix, ~45 µs
    against ~9 for a 25 KB body (#15)."""
    if "\r" in text:
        text = _LINE_END.sub("\n", text)
    return text


# --- entry points ------------------------------------------------------------------------------------


_HEADER_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_FAST_MAX_DEPTH = 20
_MULTIPART_CTES = ("7bit", "8bit", "binary")


def _split_head(raw: bytes, start: int, end: int) -> tuple[Message, int] | None:
    """Headers of ``raw[start:end]`` (as the stdlib parses them: ``header_block``) and where its body begins,
    after the blank line. Offsets instead of slices: the body is copied once, as the leaf's payload."""
    if raw.startswith((b"\r", b"\n"), start, end):  # no headers at all
        return Message(), start + (2 if raw.startswith(b"\r\n", start, end) else 1)
    match = _HEADER_END.search(raw, start, end)
    if match is None:
        return None
    block = raw[start : match.end()]
    head = parse_header_block(block)
    if head is None:  # not plainly well-formed: the stdlib decides (and may find defects)
        head = _BYTES_PARSER.parsebytes(block, headersonly=True)
    if head.defects or _raw_payload(head):
        return None
    return head, match.end()


def _boundary_lines(raw: bytes, separator: bytes, begin: int, size: int) -> list[tuple[int, int, bool]] | None:
    """(start, end after line break, is_close) of each boundary line in ``raw[begin:size]``, as the stdlib
    parser defines them: a line starting with ``--boundary``, optionally ``--``, then only spaces/tabs.
    None if irregular."""
    lines = []
    pos = begin
    while True:
        start = raw.find(separator, pos, size)
        if start == -1:
            return None  # no close boundary: let the stdlib parser record the defect
        pos = start + 1
        if start > begin and raw[start - 1] not in b"\r\n":
            continue
        end = start + len(separator)
        close = raw.startswith(b"--", end, size)
        if close:
            end += 2
        while end < size and raw[end] in b" \t":
            end += 1
        if end < size and raw[end] not in b"\r\n":
            continue
        end += 2 if raw.startswith(b"\r\n", end, size) else (1 if end < size else 0)
        if close and not lines:
            return None
        lines.append((start, end, close))
        if close:
            return lines
        pos = end


def _fast_parse(
    raw: bytes, start: int = 0, end: int | None = None, depth: int = 0, budget: list[int] | None = None
) -> Message | None:
    """The stdlib parser's result for well-formed mail in ``raw[start:end]``, without its line-by-line
    Python loop.

    ``email.feedparser`` pushes every body line through several Python generators and compiles a regex
    per boundary; on typical 5-50 KB messages that is a third of the parse time. Well-formed MIME can be
    split with ``bytes.find`` instead, with the stdlib still parsing every header block. Anything the
    stdlib would flag or treat specially (defects, missing boundaries or close delimiters, empty parts,
    message/* parts, digests, deep nesting) returns None, and the caller uses the stdlib parser for the
    whole message, so malformed mail gets exactly the stdlib's recovery and defect reports.
    Leaf payloads follow the stdlib's rule that the line break before a boundary belongs to the boundary.

    The tree is the stdlib's but for one thing: a leaf's payload is the bytes of the message, not the
    surrogate-escaped str the stdlib makes of them (which ``_payload_bytes`` turned back into the same
    bytes). Parts are found by offsets into ``raw``, so each leaf's body is copied once, as its payload,
    instead of once per level of nesting, once to decode it and once to encode it again (#15).
    """
    end = len(raw) if end is None else end
    budget = budget if budget is not None else [_MAX_PARTS]
    budget[0] -= 1
    if budget[0] < 0:
        return None
    split = _split_head(raw, start, end)
    if split is None:
        return None
    msg, body = split
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        if depth:
            end -= 2 if raw.endswith(b"\r\n", body, end) else (1 if raw.endswith((b"\n", b"\r"), body, end) else 0)
        msg._payload = raw[body:end]  # set_payload() would decode bytes to str
        return msg
    if depth >= _FAST_MAX_DEPTH or msg.get_content_subtype() == "digest":
        return None
    cte = msg.get("content-transfer-encoding")
    if cte is not None and str(cte).lower() not in _MULTIPART_CTES:
        return None
    boundary = msg.get_boundary()
    if not boundary:
        return None
    try:
        separator = b"--" + boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None
    lines = _boundary_lines(raw, separator, body, end)
    if lines is None:
        return None
    children = []
    for (_, part_start, _close), (part_end, _, _) in zip(lines, lines[1:], strict=False):
        if part_start == part_end:  # consecutive boundary lines: the stdlib skips them
            return None
        child = _fast_parse(raw, part_start, part_end, depth + 1, budget)
        if child is None:
            return None
        children.append(child)
    msg.preamble = raw[body : lines[0][0]].decode("ascii", "surrogateescape") or None
    msg.epilogue = raw[lines[-1][1] : end].decode("ascii", "surrogateescape")
    msg.set_payload(children)
    return msg


_FEED_CHUNK = 8 * 1024  # small enough that one chunk cannot open hundreds of nested levels


def _bounded_parse(raw: bytes, warnings: _Warnings) -> Message:
    """The stdlib parser, stopped once the message has more parts or deeper nesting than we would read.

    The stdlib builds the whole tree before ``_walk`` can apply its limits, and its cost grows with parts
    times nesting (every line is matched against every open boundary): 100,000 parts took 10 s and 2,000
    nested levels 40 s before ending in a RecursionError. Fed in chunks, it is stopped as soon as either
    bound is passed, and what was read so far (well past anything ``_walk`` keeps) is the result.
    ``_msgstack`` (the parser's open multiparts) is private but unchanged since Python 2.4; without it
    only the part count is bounded.
    """
    parts = 0

    def counting_factory(*args, **kwargs) -> Message:
        nonlocal parts
        parts += 1
        return Message(*args, **kwargs)

    parser = BytesFeedParser(_factory=counting_factory, policy=_COMPAT32)
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(raw[start : start + _FEED_CHUNK])
        if parts > _MAX_PARTS + 1:  # +1: the parser calls the factory once to learn its signature
            warnings.add(f"more than {_MAX_PARTS} MIME parts, the rest were ignored")
            break
        if len(getattr(parser, "_msgstack", ())) > _MAX_DEPTH:
            warnings.add(f"MIME nesting deeper than {_MAX_DEPTH} levels, inner parts ignored")
            break
    return parser.close()


def _parse_structure(raw: bytes, warnings: _Warnings) -> Message:
    try:
        fast = _fast_parse(raw)
    except Exception:  # the stdlib parser below is the reference; never fail because of the shortcut
        fast = None
    if fast is not None:
        return fast
    try:
        return _bounded_parse(raw, warnings)
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        warnings.add(f"could not parse MIME structure: {type(exc).__name__}, read the headers only")
        return _BYTES_PARSER.parsebytes(raw, headersonly=True)


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return _to_bytes(raw)
    return bytes(raw)  # type: ignore[call-overload]  # bytearray, memoryview


def _parse(raw: bytes, *, sanitize: bool = True) -> tuple[ParsedMessage, str]:
    """The whole parse; returns the message and the original (unsanitised) HTML."""
    out = ParsedMessage()
    warnings = _Warnings()
    original = ""
    try:
        data = _as_bytes(raw)
        if not data or data.isspace():  # not data.strip(): that copies the whole message
            warnings.add("empty message")
        msg = _parse_structure(data, warnings)
        try:
            _fill_headers(out, msg, warnings)
        except Exception as exc:
            warnings.add(f"could not parse headers: {type(exc).__name__}")
        try:
            body = _walk(msg, warnings)
            original = "\n".join(body.htmls)
            out.calendar_method = body.calendar_method
            if original and sanitize:
                out.html_body, out.has_remote_images = sanitize_html(original)
            out.attachments = _mark_inline(body, out.html_body)
            text = _plain("\n\n".join(t for t in body.texts if t and not t.isspace())).strip("\n").rstrip()
            out.text_body = text or _sanitized_html_to_text(out.html_body)
        except Exception as exc:
            warnings.add(f"could not parse body: {type(exc).__name__}")
    except Exception as exc:
        warnings.add(f"could not parse: {type(exc).__name__}")
    try:
        out.thread_key = _thread_key(out)
        _finalise(out)
    except Exception as exc:
        warnings.add(f"could not parse: {type(exc).__name__}")
    out.warnings = warnings.items
    return out, original


def _finalise(out: ParsedMessage) -> None:
    """Every string storable in PostgreSQL (no NUL, no lone surrogates from e.g. UTF-7 or raw headers)."""
    for name in ("message_id", "in_reply_to", "thread_key", "from_address", "from_name", "subject", "text_body",
                 "html_body", "list_id", "precedence", "auto_submitted", "calendar_method"):  # fmt: skip
        setattr(out, name, _clean(getattr(out, name)))
    for name in ("references", "reply_to", "to_addresses", "cc_addresses"):
        setattr(out, name, [_clean(value) for value in getattr(out, name)])
    for attachment in out.attachments:
        attachment.filename = _clean(attachment.filename)
        attachment.content_type = _clean(attachment.content_type)
        attachment.content_id = _clean(attachment.content_id)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes into a ParsedMessage. Never raises; problems become ``warnings``."""
    return _parse(raw)[0]


def original_html(raw: bytes) -> str:
    """The message's HTML exactly as sent (decoded, not sanitised), "" if none.

    For re-sanitising with different options (e.g. ``sanitize_html(original_html(raw),
    allow_remote_images=True)`` when the user asks to load images). Never raises.
    """
    return _parse(raw, sanitize=False)[1]
