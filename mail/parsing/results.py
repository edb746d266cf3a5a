"""What a parse returns: ``ParsedMessage``, ``ParsedAttachment``, and the warnings collector.

Separate so that the header, MIME and charset modules can all fill these without importing each other
(the MIME walk builds on the header module, and both need the result types: a shared lower floor keeps
the package free of import circles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .limits import _MAX_WARNINGS


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
