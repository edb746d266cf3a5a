"""The mail parser, as a package (see ``mime`` for the contract; the split into modules follows)."""

from .mime import (
    ParsedAttachment,
    ParsedMessage,
    html_to_text,
    normalize_subject,
    original_html,
    parse_message,
    sanitize_html,
)

__all__ = [
    "ParsedAttachment",
    "ParsedMessage",
    "html_to_text",
    "normalize_subject",
    "original_html",
    "parse_message",
    "sanitize_html",
]
