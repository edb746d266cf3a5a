"""Turn raw RFC 5322 bytes into what Mailhelper stores, never crashing.

Mail is hostile input: it arrives from anyone, was produced by thousands of buggy clients, and sync must
keep going whatever a single message looks like. So this package has one hard rule: ``parse_message``
never raises. Everything it cannot understand becomes a warning (facts only, never message content, because
warnings are stored and shown in logs/admin where mail text must not leak) and it returns whatever it
could recover.

Design choices, and why:

* The MIME *structure* comes from the standard library's parser with the ``compat32`` policy. The modern
  ``email.policy.default`` builds rich header objects eagerly and raises from its header parser on
  malformed addresses, message ids and parameters; ``compat32`` keeps headers as plain strings
  (8-bit bytes as surrogate escapes), records structural problems as ``defects`` and is faster.
  Well-formed messages take a shortcut that splits the body at the boundaries with ``bytes.find`` and
  yields the identical tree (see ``mime._fast_parse``); everything irregular goes through the stdlib parser.
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

Modules, each importing only those above it in this list:

* ``limits``: the bounds on hostile input (parts, nesting, header sizes, warnings).
* ``results``: ``ParsedMessage``, ``ParsedAttachment`` and the capped warnings collector.
* ``charsets``: charset labels, the decoding fallback chain, RFC 2047 encoded words, string clean-up.
* ``headers``: message ids, addresses, dates, list headers, ``normalize_subject``, the thread key.
* ``sanitize``: the nh3 allow-list and image/link URL rewriting (``sanitize_html``).
* ``html_text``: HTML to plain text (``html_to_text``).
* ``header_block``: a well-formed header block parsed as the stdlib parses it, at a fraction of the cost.
* ``mime``: structure parsing, transfer decoding, the walk over parts, ``parse_message``, ``original_html``.

Names with a leading underscore are private to this package: the modules share them, callers outside
use only what is exported here.
"""

from .headers import normalize_subject
from .html_text import html_to_text
from .mime import original_html, parse_message
from .results import ParsedAttachment, ParsedMessage
from .sanitize import sanitize_html

__all__ = [
    "ParsedAttachment",
    "ParsedMessage",
    "html_to_text",
    "normalize_subject",
    "original_html",
    "parse_message",
    "sanitize_html",
]
