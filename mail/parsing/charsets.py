"""Bytes to text for headers, filenames and bodies: charset labels, the fallback chain, RFC 2047.

Separate because every piece of text in a message is decoded through this one path, with one fallback
chain (declared charset, then UTF-8, then cp1252 with replacement) whose warnings name the charset that
misbehaved, never the text. Also holds the small string helpers the other modules share (unfolding,
whitespace, the PostgreSQL-safe ``_clean``).
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

from .results import _Warnings

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
    if text.isascii():
        return text
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
    if text.isascii():  # constant time in CPython; encoding to test for surrogates copies the text
        return text
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
