"""Turn raw RFC 5322 bytes into what Mailhelper stores, never crashing.

Mail is hostile input: it arrives from anyone, was produced by thousands of buggy clients, and sync must
keep going whatever a single message looks like. So this module has one hard rule: ``parse_message``
never raises. Everything it cannot understand becomes a warning (facts only, never message content, because
warnings are stored and shown in logs/admin where mail text must not leak) and it returns whatever it
could recover.

Design choices, and why:

* The MIME *structure* comes from the standard library's parser with the ``compat32`` policy. The modern
  ``email.policy.default`` builds rich header objects eagerly and raises from its header parser on
  malformed addresses, message ids and parameters; ``compat32`` keeps headers as plain strings
  (8-bit bytes as surrogate escapes), records structural problems as ``defects`` and is faster.
  Well-formed messages take a shortcut that splits the body at the boundaries with ``bytes.find`` and
  yields the identical tree (see ``_fast_parse``); everything irregular goes through the stdlib parser.
* Headers are decoded here, not by the library: RFC 2047 encoded words with unknown or lying charsets,
  raw 8-bit headers (UTF-8 or legacy code pages) and split multi-byte characters are all common, and we
  want one decoding path with one fallback chain (declared charset, then UTF-8, then cp1252 with
  replacement) that records which charset misbehaved.
* Transfer encodings are decoded here too (base64, quoted-printable, uuencode), once per part, with C
  helpers from ``binascii``: the library silently loses data after the first padded block of a
  concatenated base64 body, and ignores a Content-Transfer-Encoding value with trailing junk.
* HTML is sanitised with ``nh3`` (Rust ``ammonia``) against an allow-list; remote images are removed by
  default so that opening a message does not tell the sender it was read.
* Every string we return is safe for PostgreSQL: no NUL characters and no lone surrogates.
"""

from __future__ import annotations

import binascii
import codecs
import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser, Parser
from email.utils import getaddresses, parsedate, parsedate_to_datetime
from functools import lru_cache
from io import BytesIO
from urllib.parse import unquote

import nh3

__all__ = [
    "ParsedAttachment",
    "ParsedMessage",
    "html_to_text",
    "normalize_subject",
    "original_html",
    "parse_message",
    "sanitize_html",
]


# --- public data -------------------------------------------------------------------------------------


@dataclass
class ParsedAttachment:
    """One non-body MIME part (file, inline image, calendar object, attached message)."""

    filename: str = ""  # decoded (RFC 2231 / encoded-words), "" if none; sanitised of path separators
    content_type: str = "application/octet-stream"  # lower-case "type/subtype"
    size: int = 0  # decoded payload size in bytes
    content_id: str = ""  # without <>, "" if none
    is_inline: bool = False  # a CID image / related part shown inside the HTML body
    data: bytes = b""  # decoded payload


@dataclass
class ParsedMessage:
    """Everything Mailhelper stores about a message; every field has an empty default so a partial parse
    is still a complete, storable object."""

    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    thread_key: str = ""
    date: datetime | None = None
    from_address: str = ""
    from_name: str = ""
    reply_to: list[str] = field(default_factory=list)
    to_addresses: list[str] = field(default_factory=list)
    cc_addresses: list[str] = field(default_factory=list)
    subject: str = ""
    text_body: str = ""
    html_body: str = ""
    has_remote_images: bool = False
    attachments: list[ParsedAttachment] = field(default_factory=list)
    list_id: str = ""
    has_list_unsubscribe: bool = False
    precedence: str = ""
    auto_submitted: str = ""
    calendar_method: str = ""
    warnings: list[str] = field(default_factory=list)


# --- limits ------------------------------------------------------------------------------------------

# Bounds that keep hostile input (millions of parts, megabyte headers) from costing more than a normal
# message; real mail never comes near them.
_MAX_WARNINGS = 50
_MAX_PARTS = 1000
_MAX_DEPTH = 30
_MAX_ADDRESS_HEADER = 256 * 1024  # getaddresses() is pure Python: about 1 s per MB
_MAX_DATE_HEADER = 300
_MAX_FILENAME = 255
_CALENDAR_SCAN = 64 * 1024  # METHOD sits near the top of a VCALENDAR

_COMPAT32 = email_policy.compat32
_BYTES_PARSER = BytesParser(policy=_COMPAT32)
_STR_PARSER = Parser(policy=_COMPAT32)


class _Warnings:
    """Ordered, de-duplicated, capped list of warnings (one broken message must not store 10,000 of them)."""

    __slots__ = ("items", "_seen")

    def __init__(self) -> None:
        self.items: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str) -> None:
        if text in self._seen:
            return
        self._seen.add(text)
        if len(self.items) < _MAX_WARNINGS:
            self.items.append(text)
        elif len(self.items) == _MAX_WARNINGS:
            self.items.append("further warnings omitted")


# --- strings and charsets ----------------------------------------------------------------------------

# Charsets whose names say "we don't know": decode by guessing without blaming the sender's declaration.
_NO_CHARSET = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "8bit", "x-user-defined", "default", "none"})
# What mail clients mean by a label, rather than what the label strictly says (as browsers do, WHATWG).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "big5": "big5hkscs",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "utf8": "utf-8",
}
# Python codecs that are text encodings in name only: they interpret escapes or always fail.
# (Compared with CodecInfo.name, which spells them with hyphens.)
_UNSAFE_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"})
_CHARSET_NAME_JUNK = re.compile(r"[^A-Za-z0-9._:+\-]")


def _label(name: str) -> str:
    """A charset name fit for a warning: it comes from the message, so keep it short and inert."""
    return _CHARSET_NAME_JUNK.sub("?", name)[:40]


@lru_cache(maxsize=512)
def _codec(charset: str) -> str | None:
    """Python codec for a MIME charset label: "" = no usable declaration, None = unknown charset."""
    name = charset.strip().strip("\"'").strip().lower()
    if name in _NO_CHARSET:
        return ""
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        if not name.startswith("x-"):  # x-mac-roman and friends: Python knows them without the x-
            return None
        try:
            info = codecs.lookup(name[2:])
        except (LookupError, ValueError, TypeError):
            return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:
        return None
    return info.name


def _decode_bytes(data: bytes, charset: str | None, where: str, warnings: _Warnings) -> str:
    """Decode text: declared charset, then UTF-8, then cp1252 with replacement; never raises.

    Mail lies about charsets all the time (us-ascii declared over UTF-8, UTF-8 declared over Latin-1),
    so a failing declaration is a warning, not an error; the warning names the charset, never the text.
    """
    label = charset or ""
    codec = _codec(label) if label else ""
    if codec:
        try:
            return data.decode(codec)
        except Exception:  # UnicodeDecodeError, or a codec that misbehaves
            problem = f"text in {where} is not valid {_label(label)!r}"
    elif codec is None:
        problem = f"unknown charset {_label(label)!r} in {where}"
    else:
        problem = ""
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if problem:
                warnings.add(f"{problem}, decoded as utf-8")
            return text
    warnings.add(f"{problem or f'8-bit text without charset in {where}'}, decoded as cp1252")
    return data.decode("cp1252", "replace")


def _to_bytes(text: str) -> bytes:
    """The original bytes of a payload/header that the parser stored as ASCII with surrogate escapes."""
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # not from BytesParser: real non-ASCII text, maybe with stray surrogates
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace")


def _fix_8bit(text: str, where: str, warnings: _Warnings) -> str:
    """Repair raw 8-bit header bytes: UTF-8 (RFC 6532) if they are valid UTF-8, else cp1252."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    raw = _to_bytes(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        warnings.add(f"8-bit bytes in {where} are not utf-8, decoded as cp1252")
        return raw.decode("cp1252", "replace")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Make a string storable in PostgreSQL: drop NUL, replace lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _unfold(value: str) -> str:
    """RFC 5322 unfolding: remove the line breaks, keep the whitespace that follows them."""
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "").replace("\n", "")
    return value


def _norm_ws(text: str) -> str:
    return " ".join(text.split())


# --- RFC 2047 encoded words --------------------------------------------------------------------------

# Lenient on purpose: real encoded words contain spaces and sit inside quoted strings and filenames.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?]*)\?=")


def _b64_lenient(data: bytes) -> bytes:
    """Base64 for short strings (encoded words): fix the padding rather than give up."""
    data = data.strip()
    extra = len(data.rstrip(b"=")) % 4
    if extra == 1:
        data = data.rstrip(b"=")[:-1]
    elif extra:
        data = data.rstrip(b"=") + b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


def _decode_words(text: str, where: str, warnings: _Warnings) -> str:
    """Decode RFC 2047 encoded words.

    Adjacent words in the same charset are joined as *bytes* before decoding, because many mailers split
    a multi-byte character across two words; whitespace between adjacent words is dropped (RFC 2047 6.2).
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(_decode_bytes(bytes(pending), pending_charset, where, warnings))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        if pending_charset is None or between.strip():
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix: utf-8*en
        payload = match.group(3).encode("utf-8", "replace")
        data = _b64_lenient(payload) if match.group(2) in "bB" else binascii.a2b_qp(payload, header=True)
        if pending_charset is not None and charset != pending_charset:
            flush()
        pending_charset = charset
        pending.extend(data)
        pos = match.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


# --- header fields -----------------------------------------------------------------------------------

_ANGLE = re.compile(r"<([^<>]*)>")
_SUBJECT_PREFIX = re.compile(
    r"(?:re|fwd?|aw|wg|tr|r|i|sv|antw|odp)[ \t]*(?:\[\d+\]|\(\d+\))?[ \t]*[:\uff1a][ \t]*", re.I
)


def _msg_id(value: str) -> str:
    """First msg-id without angle brackets; tolerant of ids that lost their brackets."""
    for candidate in _ANGLE.findall(value):
        candidate = candidate.strip()
        if candidate:
            return candidate
    tokens = value.replace("<", " ").replace(">", " ").split()
    return tokens[0] if tokens else ""


def _msg_ids(value: str) -> list[str]:
    """All msg-ids in order, de-duplicated (clients repeat ids when they rebuild References)."""
    ids = [candidate.strip() for candidate in _ANGLE.findall(value)]
    if not any(ids):
        ids = value.replace("<", " ").replace(">", " ").replace(",", " ").split()
    seen: set[str] = set()
    result = []
    for msg_id in ids:
        if msg_id and msg_id not in seen:
            seen.add(msg_id)
            result.append(msg_id)
    return result


def normalize_subject(subject: str) -> str:
    """Lower-case subject without reply/forward prefixes (Re:, Fwd:, AW:, WG:, Fw:, Tr:, R:, I:, SV: ...).

    Used only as the thread-key fallback, so "Re: AW: Offer" and "offer" land in the same thread.
    Matching advances a position instead of re-slicing, so "Re: " * 100000 stays linear.
    """
    text = _norm_ws(subject).lower()
    pos = 0
    while True:
        match = _SUBJECT_PREFIX.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    return text[pos:].strip()


def _thread_key(parsed: ParsedMessage) -> str:
    """The root of the conversation, so every message of a thread gets the same key.

    References lists the ancestors oldest first, so its first entry is the thread's root message; a
    reply from a client that only sets In-Reply-To points at its parent (good enough, and the parent
    carries the same root). A message with neither starts a thread: its own Message-ID. Broken clients
    and some gateways send none of these at all; for them the normalised subject is the only link left.
    """
    if parsed.references:
        return parsed.references[0]
    if parsed.in_reply_to:
        return parsed.in_reply_to
    if parsed.message_id:
        return parsed.message_id
    return "subject:" + normalize_subject(parsed.subject)


def _parse_date(value: str, warnings: _Warnings) -> datetime | None:
    """Timezone-aware datetime (UTC when the header has no or an impossible zone), or None."""
    value = value.strip()[:_MAX_DATE_HEADER]
    try:
        result = parsedate_to_datetime(value)
    except Exception:  # ValueError, TypeError, OverflowError from odd values
        result = None
    if result is None:
        try:  # e.g. an offset beyond +-24h: keep the wall-clock time, assume UTC
            fields = parsedate(value)
            if fields is not None:
                result = datetime(*fields[:6], tzinfo=UTC)
                warnings.add("Date header has an invalid time zone, assumed UTC")
        except Exception:
            result = None
    if result is None:
        warnings.add("unparseable Date header")
        return None
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    return result


def _addresses(values: list[str], where: str, warnings: _Warnings) -> list[tuple[str, str]]:
    """(display name, lower-cased addr-spec) pairs; names are decoded after parsing so that a comma
    inside an encoded word cannot split an address."""
    text = ", ".join(_fix_8bit(_unfold(value), where, warnings) for value in values)
    if len(text) > _MAX_ADDRESS_HEADER:
        cut = text.rfind(",", 0, _MAX_ADDRESS_HEADER)
        text = text[: cut if cut > 0 else _MAX_ADDRESS_HEADER]
        warnings.add(f"{where} is too long, only the first {_MAX_ADDRESS_HEADER // 1024} KB were read")
    try:
        pairs = getaddresses([text])
    except Exception as exc:
        warnings.add(f"could not parse {where}: {type(exc).__name__}")
        return []
    result = []
    seen: set[str] = set()
    for name, address in pairs:
        address = address.strip().strip("<>").strip().lower()
        if not address or address in seen:
            continue
        seen.add(address)
        result.append((_norm_ws(_decode_words(name, where, warnings)), address))
    return result


def _header_map(msg: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(str(name).strip().lower(), []).append(value if isinstance(value, str) else str(value))
    return headers


def _fill_headers(out: ParsedMessage, msg: Message, warnings: _Warnings) -> None:
    headers = _header_map(msg)

    def first(name: str, label: str) -> str | None:
        values = headers.get(name)
        if not values:
            return None
        return _fix_8bit(_unfold(values[0]), f"header {label}", warnings)

    message_id = first("message-id", "Message-ID")
    out.message_id = _msg_id(message_id) if message_id else ""
    in_reply_to = first("in-reply-to", "In-Reply-To")
    out.in_reply_to = _msg_id(in_reply_to) if in_reply_to else ""
    references = first("references", "References")
    out.references = _msg_ids(references) if references else []

    subject = first("subject", "Subject")
    out.subject = _norm_ws(_decode_words(subject, "header Subject", warnings)) if subject else ""

    if "from" in headers:
        senders = _addresses(headers["from"][:1], "header From", warnings)
        if senders:
            out.from_name, out.from_address = senders[0]
    else:
        warnings.add("missing From header")
    out.reply_to = [a for _, a in _addresses(headers.get("reply-to", []), "header Reply-To", warnings)]
    out.to_addresses = [a for _, a in _addresses(headers.get("to", []), "header To", warnings)]
    out.cc_addresses = [a for _, a in _addresses(headers.get("cc", []), "header Cc", warnings)]

    date = first("date", "Date")
    if date is None or not date.strip():
        warnings.add("missing Date header")
    else:
        out.date = _parse_date(date, warnings)

    list_id = first("list-id", "List-Id")
    if list_id:
        found = _ANGLE.findall(list_id)
        out.list_id = (found[-1] if found else list_id).strip()
    unsubscribe = first("list-unsubscribe", "List-Unsubscribe")
    out.has_list_unsubscribe = bool(unsubscribe and unsubscribe.strip())
    precedence = first("precedence", "Precedence")
    out.precedence = _norm_ws(precedence).lower() if precedence else ""
    auto_submitted = first("auto-submitted", "Auto-Submitted")
    out.auto_submitted = _norm_ws(auto_submitted).lower() if auto_submitted else ""


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
    surrogate escapes, or a list of parts) in every Python 3 version.
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
        # encoded as "=3D"; two C-level counts instead of a regex visit to every "=" (3x faster).
        if data.count(b"=") > raw.count(b"=3D") + raw.count(b"=3d"):
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


# --- HTML --------------------------------------------------------------------------------------------

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "address", "b", "big", "blockquote", "br", "caption", "center", "cite", "code", "col",
        "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
    }
)  # fmt: skip
_CELL_ATTRIBUTES = {"align", "valign", "width", "height", "colspan", "rowspan", "bgcolor"}
_ALLOWED_ATTRIBUTES = {
    "*": {"dir", "lang", "title", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": _CELL_ATTRIBUTES,
    "th": _CELL_ATTRIBUTES,
    "tr": {"valign", "bgcolor"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
}
# Removed together with their content (the rest of the disallowed tags are unwrapped, keeping text).
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "title", "noscript", "template", "iframe", "object", "embed", "applet", "textarea",
     "select", "svg", "math", "head"}
)  # fmt: skip
_SANITIZED_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
# Leading/trailing C0 controls and spaces are ignored by URL parsers, and so are tabs/newlines inside.
_URL_EDGE = "".join(chr(c) for c in range(33))
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*", re.I)
_TAG = re.compile(r"<[^>]*>")
# nh3 (html5ever) serialises canonically: attribute values are double-quoted with '"', '<' and '>'
# escaped, and text has '<' escaped. On its *output* these patterns match exactly what they name.
_IMG_TAG = re.compile(r"<img\s[^>]*>")
_SRC_ATTR = re.compile(r'\ssrc="([^"]*)"')
# Link schemes nh3 lets through only because images need them; browsers ignore tabs/newlines inside.
_NOISE = r"[\t\n\r]*"
_IMAGE_ONLY_SCHEME = rf"[\x00-\x20]*(?:{_NOISE.join('data')}|{_NOISE.join('cid')}){_NOISE}:"
# Case-insensitive only where needed: a literal prefix lets the regex engine skip ahead (10x faster).
_UNSAFE_HREF = re.compile(rf'(<a(?:\s[^>]*?)?)\shref="(?i:{_IMAGE_ONLY_SCHEME})[^"]*"')
_UNSAFE_HREF_HINT = re.compile(rf'href="(?i:{_IMAGE_ONLY_SCHEME})')


def _relative_url(url: str) -> str | None:
    """Mail has no base URL, so relative URLs are meaningless and dropped; protocol-relative ones
    ("//host/x.png", a favourite of tracking pixels) are made explicit so they count as remote."""
    stripped = url.strip(_URL_EDGE)
    return "https:" + stripped if stripped.startswith("//") else None


def _build_sanitizer() -> nh3.Cleaner:
    """Built once: converting the allow-lists on every call costs more than cleaning a short message.

    No ``attribute_filter``: a Python callback per attribute doubled the cost on link-heavy newsletters;
    the two URL rules nh3 cannot express per tag (data: only for images, remote images) are applied to
    its canonical output instead (see ``sanitize_html``).
    """
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_SANITIZED_URL_SCHEMES),
        url_relative=_relative_url,
    )


_SANITIZER = _build_sanitizer()


def _image_rewriter(allow_remote_images: bool, remote: list[bool]) -> Callable[[re.Match[str]], str]:
    """Per ``<img>`` of the sanitised output: keep cid: and raster data: images, remove (or keep, when
    allowed) remote ones and note that there were some, drop any other URL."""

    def rewrite(match: re.Match[str]) -> str:
        tag = match.group()
        src = _SRC_ATTR.search(tag)
        if src is None:
            return tag
        value = src.group(1).strip(_URL_EDGE).replace("\t", "").replace("\n", "").replace("\r", "")
        start = value[:11].lower()
        keep: str | None = None
        if start.startswith("cid:"):
            keep = "cid:" + value[4:]  # lower-case scheme: the views look for src="cid:..."
        elif start.startswith(("http:", "https:")):
            remote.append(True)
            keep = value if allow_remote_images else None
        elif start.startswith("data:") and _DATA_IMAGE.fullmatch(value):
            keep = value
        replacement = f' src="{keep}"' if keep is not None else ""
        return tag[: src.start()] + replacement + tag[src.end() :]

    return rewrite


def sanitize_html(html: str, *, allow_remote_images: bool = False) -> tuple[str, bool]:
    """Return (clean_html, had_remote_images).

    Allow-list sanitising with nh3: formatting tags only, no scripts/styles/frames/forms/SVG, no event
    handlers, no style/class/id attributes (they could restyle or overlay our own page), links open in a
    new tab without referrer. URLs: http(s) and mailto for links; cid:, http(s) and base64 raster
    ``data:`` images for ``<img>``; relative URLs are dropped (mail has no base URL). Remote images are
    tracking pixels until the user says otherwise, so their ``src`` is removed (alt text stays) unless
    ``allow_remote_images``. ``had_remote_images`` is True when the HTML referenced http(s) images
    (which were removed, unless allowed). Never raises: if the sanitiser fails, the text is returned escaped.
    """
    if not html:
        return "", False
    html = _clean(html)
    try:
        clean = _SANITIZER.clean(html)
    except Exception:  # never let a sanitiser bug take the message down
        return html_lib.escape(_TAG.sub(" ", html)), False
    remote: list[bool] = []
    if "<img" in clean:
        clean = _IMG_TAG.sub(_image_rewriter(allow_remote_images, remote), clean)
    if _UNSAFE_HREF_HINT.search(clean):
        clean = _UNSAFE_HREF.sub(r"\1", clean)
    return clean, bool(remote)


_ATTRS = r"(?:\s[^>]*)?"
_PARAGRAPH = re.compile(rf"</?(?:p|h[1-6]|blockquote|pre|table|ul|ol|dl|hr){_ATTRS}>")
_LINE = re.compile(rf"</?(?:div|tr|dt|dd|li){_ATTRS}>")
_LIST_ITEM = re.compile(rf"<li{_ATTRS}>")
_LINE_BREAK = re.compile(rf"<br{_ATTRS}>")
_CELL = re.compile(r"</t[dh]>")
_BREAKS = re.compile(r"[\x01\x02][ \x01\x02]*")


def _break(match: re.Match[str]) -> str:
    return "\n\n" if "\x02" in match.group() else "\n"


def _sanitized_html_to_text(clean: str) -> str:
    """Plain text from *sanitised* HTML (canonical markup, no scripts/styles) with C-speed regexes.

    Block boundaries become markers first, so that ``</div><div>`` is one line break, not two, while
    anything involving a paragraph is a blank line; ``<br>`` is always a real line break. Whitespace is
    then collapsed line by line with ``str.split`` (a regex over every space is several times slower).
    """
    # Source line breaks are just spaces in HTML; \x01/\x02 are reserved for our markers.
    # (str.replace, not str.translate: translate with a mapping is ~50 ns per character.)
    text = clean.replace("\r", " ").replace("\n", " ")
    if "\x01" in text or "\x02" in text:
        text = text.replace("\x01", "").replace("\x02", "")
    text = _PARAGRAPH.sub("\x02", text)
    text = _LIST_ITEM.sub("\x01- ", text)
    text = _LINE.sub("\x01", text)
    text = _LINE_BREAK.sub("\n", text)
    text = _CELL.sub(" ", text)
    text = _TAG.sub("", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&nbsp;", " ")
    text = text.replace("&amp;", "&")
    text = _BREAKS.sub(_break, text)
    lines: list[str] = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line or (lines and lines[-1]):  # at most one blank line in a row
            lines.append(line)
    return "\n".join(lines).strip()


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: tags stripped, scripts/styles dropped, paragraphs and line breaks kept.

    Goes through the sanitiser first: it repairs broken markup, so the conversion can be simple and fast.
    """
    return _sanitized_html_to_text(sanitize_html(html)[0]) if html else ""


def _plain(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# --- entry points ------------------------------------------------------------------------------------


_HEADER_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_FAST_MAX_DEPTH = 20
_MULTIPART_CTES = ("7bit", "8bit", "binary")


def _split_head(raw: bytes) -> tuple[Message, bytes] | None:
    """Headers (parsed by the stdlib, so identical) and the body bytes after the blank line."""
    if raw[:1] in (b"\r", b"\n"):  # no headers at all
        return Message(), raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    match = _HEADER_END.search(raw)
    if match is None:
        return None
    head = _BYTES_PARSER.parsebytes(raw[: match.end()], headersonly=True)
    if head.defects or _raw_payload(head):
        return None
    return head, raw[match.end() :]


def _boundary_lines(body: bytes, separator: bytes) -> list[tuple[int, int, bool]] | None:
    """(start, end after line break, is_close) of each boundary line, as the stdlib parser defines them:
    a line starting with ``--boundary``, optionally ``--``, then only spaces/tabs. None if irregular."""
    lines = []
    size = len(body)
    pos = 0
    while True:
        start = body.find(separator, pos)
        if start == -1:
            return None  # no close boundary: let the stdlib parser record the defect
        pos = start + 1
        if start and body[start - 1] not in b"\r\n":
            continue
        end = start + len(separator)
        close = body.startswith(b"--", end)
        if close:
            end += 2
        while end < size and body[end] in b" \t":
            end += 1
        if end < size and body[end] not in b"\r\n":
            continue
        end += 2 if body.startswith(b"\r\n", end) else (1 if end < size else 0)
        if close and not lines:
            return None
        lines.append((start, end, close))
        if close:
            return lines
        pos = end


def _fast_parse(raw: bytes, depth: int = 0, budget: list[int] | None = None) -> Message | None:
    """The stdlib parser's result for well-formed mail, without its line-by-line Python loop.

    ``email.feedparser`` pushes every body line through several Python generators and compiles a regex
    per boundary; on typical 5-50 KB messages that is a third of the parse time. Well-formed MIME can be
    split with ``bytes.find`` instead, with the stdlib still parsing every header block. Anything the
    stdlib would flag or treat specially (defects, missing boundaries or close delimiters, empty parts,
    message/* parts, digests, deep nesting) returns None, and the caller uses the stdlib parser for the
    whole message, so malformed mail gets exactly the stdlib's recovery and defect reports.
    Leaf payloads follow the stdlib's rule that the line break before a boundary belongs to the boundary.
    """
    budget = budget if budget is not None else [_MAX_PARTS]
    budget[0] -= 1
    if budget[0] < 0:
        return None
    split = _split_head(raw)
    if split is None:
        return None
    msg, body = split
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        if depth:
            body = body[:-2] if body.endswith(b"\r\n") else (body[:-1] if body.endswith((b"\n", b"\r")) else body)
        msg.set_payload(body.decode("ascii", "surrogateescape"))
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
    lines = _boundary_lines(body, separator)
    if lines is None:
        return None
    children = []
    for (_, start, _close), (end, _, _) in zip(lines, lines[1:], strict=False):
        if start == end:  # consecutive boundary lines: the stdlib skips them
            return None
        child = _fast_parse(body[start:end], depth + 1, budget)
        if child is None:
            return None
        children.append(child)
    msg.preamble = body[: lines[0][0]].decode("ascii", "surrogateescape") or None
    msg.epilogue = body[lines[-1][1] :].decode("ascii", "surrogateescape")
    msg.set_payload(children)
    return msg


def _parse_structure(raw: bytes, warnings: _Warnings) -> Message:
    try:
        fast = _fast_parse(raw)
    except Exception:  # the stdlib parser below is the reference; never fail because of the shortcut
        fast = None
    if fast is not None:
        return fast
    try:
        return _BYTES_PARSER.parsebytes(raw)
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
        if not data.strip():
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
            text = _plain("\n\n".join(t for t in body.texts if t.strip())).strip("\n").rstrip()
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
