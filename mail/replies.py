"""Composing replies, replies to all and forwards: recipients, subject, quoted text, the draft's body.

A service over models (no request, no Celery): the views call it, the tests call it directly.

* Recipients: a reply goes to Reply-To, else From (to the original recipients when the original is
  the user's own mail); reply-all adds the other To and Cc recipients. The user's own addresses (all
  their accounts) are left out and every address appears once (compared case-insensitively).
* Subjects get one "Re: " / "Fwd: " whatever prefixes they already carry ("Re: AW: Re: x" -> "Re: x").
* Without an LLM the body is one of four templates (formal, friendly, brief, decline) built from the
  user's reply settings (greeting, closing, form of address) and the account's signature; with a
  provider configured for replies the provider writes it (masked, see providers/base.py) and any
  provider failure falls back to the template, the reason kept on the draft for the user to see.
* The original is quoted below the reply ("On <date>, <name> wrote:" and "> " lines); a forward
  carries the original's headers and text, and (at sending) its attachments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from core import stored_text

from .models import AccountSignature, Draft, MailAccount, Message, ReplySettings
from .parsing import html_to_text

log = logging.getLogger(__name__)

QUOTE_LIMIT = 50_000  # characters of the original quoted or forwarded; the rest is cut with a note
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv|antw|odp|r|ref|réf)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|wg|tr|i|rv|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]", re.I)
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")

Pair = tuple[str, str]  # (display name, address)


class AddressListError(ValueError):
    """A recipients field could not be read; the message names the part that is wrong."""


# --------------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------------


def own_addresses(owner_id: int) -> set[str]:
    """The user's addresses on all their accounts, lower-case: never a recipient of their reply."""
    return {a.lower() for a in MailAccount.objects.filter(owner_id=owner_id).values_list("email_address", flat=True)}


def format_pair(name: str, address: str) -> str:
    """'Anna Schmidt <anna@example.com>', quoted where the name needs it ('"Schmidt, Anna" <...>')."""
    name = " ".join((name or "").split()).strip('"')
    if not name or name.lower() == address.lower():
        return address
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError, TypeError):  # an address the header parser cannot represent
        return address


def format_list(pairs: list[Pair]) -> str:
    return ", ".join(format_pair(name, address) for name, address in pairs)


def parse_address_list(text: str) -> list[Pair]:
    """Read a recipients field as the user typed it (commas or semicolons between addresses).

    Raises AddressListError naming the entry that is not an address.
    """
    text = (text or "").replace(";", ",").replace("\n", ",")
    if not text.strip():
        return []
    pairs = []
    for part in _split_outside_quotes(text):
        if not part.strip():
            continue
        found = getaddresses([part])
        if len(found) != 1 or not _ADDRESS.match(found[0][1] or ""):
            raise AddressListError(gettext("%(text)s is not an e-mail address.") % {"text": repr(part.strip()[:80])})
        pairs.append((found[0][0].strip(), found[0][1].strip()))
    return _dedupe(pairs, set())


def _split_outside_quotes(text: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _dedupe(pairs: list[Pair], seen: set[str], own: set[str] = frozenset()) -> list[Pair]:
    """Drop the user's own addresses and repeats (first occurrence wins; `seen` is updated)."""
    result = []
    for name, address in pairs:
        key = address.strip().lower()
        if not key or key in seen or key in own:
            continue
        seen.add(key)
        result.append((name, address.strip()))
    return result


def _original_headers(message: Message) -> dict[str, list[Pair]]:
    """Reply-To, To and Cc with display names, read from the stored source; the stored address
    lists (names dropped at sync) stand in when there is no source."""
    result: dict[str, list[Pair]] = {
        "reply-to": [],
        "to": [("", a) for a in message.to_addresses],
        "cc": [("", a) for a in message.cc_addresses],
    }
    raw = message.raw
    if not raw:
        return result
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        for name in result:
            pairs = [(n, a) for n, a in getaddresses([str(v) for v in headers.get_all(name, [])]) if "@" in a]
            if pairs:
                result[name] = pairs
    except Exception:  # noqa: BLE001 - a malformed header: fall back to what sync stored
        log.info("headers of message %s could not be re-read for a reply", message.pk)
    return result


def recipients(message: Message, kind: str, own: set[str]) -> tuple[list[Pair], list[Pair]]:
    """(To, Cc) for a reply or reply-all to `message`; a forward starts with none."""
    if kind == Draft.Kind.FORWARD:
        return [], []
    headers = _original_headers(message)
    sender = headers["reply-to"] or [(message.from_name, message.from_address)]
    if message.from_address.lower() in own:
        # Answering one's own message (from Sent): write to its recipients again, not to oneself.
        to, cc = headers["to"], headers["cc"] if kind == Draft.Kind.REPLY_ALL else []
    elif kind == Draft.Kind.REPLY_ALL:
        to, cc = [*sender, *headers["to"]], headers["cc"]
    else:
        to, cc = sender, []
    seen: set[str] = set()
    to = _dedupe(to, seen, own)
    cc = _dedupe(cc, seen, own) if kind == Draft.Kind.REPLY_ALL else []
    if not to and cc:
        to, cc = cc[:1], cc[1:]
    return to, cc


# --------------------------------------------------------------------------------------------------
# Subject, quoting, forwarding
# --------------------------------------------------------------------------------------------------


def reply_subject(subject: str) -> str:
    rest = _REPLY_PREFIX.sub("", (subject or "").strip()).strip()
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if _FORWARD_PREFIX.match(subject):
        return subject
    return f"Fwd: {subject}" if subject else "Fwd:"


def _original_text(message: Message) -> str:
    text = message.text_body or (html_to_text(message.html_body) if message.html_body else "")
    text = text.replace("\r\n", "\n").strip("\n")
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT].rsplit("\n", 1)[0] + "\n[...]"
    return text


def _when(message: Message) -> str:
    moment = message.date or message.sort_date
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return f"{local:%a}, {local.day} {local:%b %Y at %H:%M}"


def _sender(message: Message) -> str:
    return format_pair(message.from_name, message.from_address) if message.from_address else message.from_name


def quote(message: Message) -> str:
    """'On <date>, <name> wrote:' and the original's text with '> ' before every line."""
    when = _when(message)
    intro = f"On {when}, {_sender(message) or 'someone'} wrote:" if when else f"{_sender(message) or 'Someone'} wrote:"
    lines = [f"> {line}" if line else ">" for line in _original_text(message).split("\n")]
    return "\n".join([intro, *lines])


def forward_block(message: Message) -> str:
    """The forwarded message as mail clients show it: a separator, its headers, its text."""
    headers = _original_headers(message)
    lines = ["---------- Forwarded message ----------", f"From: {_sender(message)}"]
    if _when(message):
        lines.append(f"Date: {_when(message)}")
    lines.append(f"Subject: {message.subject}")
    if headers["to"]:
        lines.append(f"To: {format_list(headers['to'])}")
    if headers["cc"]:
        lines.append(f"Cc: {format_list(headers['cc'])}")
    return "\n".join([*lines, "", _original_text(message)])


# --------------------------------------------------------------------------------------------------
# The reply text: templates, or the user's LLM
# --------------------------------------------------------------------------------------------------

# (default greeting, text, default closing) per style; the user's greeting/closing win when set.
STYLE_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "formal": (
        "Dear {name},",
        "Thank you for your message.\n\n\n\nPlease let me know if you have any further questions.",
        "Kind regards,",
    ),
    "friendly": ("Hi {name},", "Thanks a lot for your message!\n\n\n", "Best wishes,"),
    "brief": ("Hi {name},", "Thanks, noted.", "Best,"),
    "decline": (
        "Dear {name},",
        "Thank you for thinking of me. Unfortunately I have to decline this time.\n\nI hope you understand.",
        "Kind regards,",
    ),
}


@dataclass
class Written:
    """A draft's body and who wrote it ("template" or the LLM's method), with why no LLM if it failed."""

    body: str
    generated_by: str
    fallback_reason: str = ""


def reply_settings(owner_id: int) -> ReplySettings:
    return ReplySettings.objects.filter(owner_id=owner_id).first() or ReplySettings(owner_id=owner_id)


def signature_for(account: MailAccount) -> str:
    row = AccountSignature.objects.filter(account=account, owner_id=account.owner_id).first()
    return row.text.strip("\n") if row else ""


def addressee_name(name: str, address: str, address_form: str) -> str:
    """Full name for the formal form of address, first name for the informal one ('' if unknown)."""
    name = " ".join((name or "").split()).strip('"')
    if not name or "@" in name:
        return ""
    if "," in name:  # "Schmidt, Anna"
        last, _, first = name.partition(",")
        name = f"{first.strip()} {last.strip()}".strip()
    if address_form == ReplySettings.AddressForm.INFORMAL:
        return name.split()[0]
    return name


def _greeting(template: str, name: str) -> str:
    if "{name}" not in template:
        return template
    if name:
        return template.replace("{name}", name)
    cleaned = re.sub(r"\s*\{name\}", "", template).strip()
    return "Hello," if cleaned in {"Dear,", "Hi,", "Hello,"} else cleaned


def template_reply(style: str, settings: ReplySettings, name: str, signature: str) -> str:
    default_greeting, text, default_closing = STYLE_TEMPLATES[style]
    greeting = _greeting(settings.greeting.strip() or default_greeting, name)
    closing = settings.closing.strip() or default_closing
    parts = [greeting, text, closing]
    if signature.strip():
        parts.append(signature)
    return "\n\n".join(parts)


@dataclass(frozen=True)
class ReplyBrief:
    """What a reply writer gets besides the message: the user's choices, already resolved."""

    style: str
    greeting: str  # the user's greeting for this addressee, or "" to let the writer choose
    closing: str
    address_form: str  # ReplySettings.AddressForm value
    instructions: str
    signature: str
    addressee: str  # the name the reply addresses ("Anna Schmidt")
    reply_to: list[str]  # formatted Reply-To addresses of the original


class WriterFailed(Exception):
    """A reply writer could not write: the template is used and this text is shown to the user."""


#: Writes the text of a reply, or returns None when the user has no writer set up. Registered by a higher
#: floor (analysis: the user's language model) in its AppConfig.ready(); mail does not import it.
ReplyWriter = Callable[[Message, ReplyBrief], "Written | None"]
_writer: ReplyWriter | None = None


def set_reply_writer(writer: ReplyWriter | None) -> None:
    global _writer
    _writer = writer


def write_reply(message: Message, style: str, first_recipient: Pair | None) -> Written:
    """The text of a reply (without the quote): the registered writer's (the user's LLM) if it has one
    for this user, else the template; a failing writer degrades to the template with its reason kept."""
    if style not in STYLE_TEMPLATES:
        raise ValueError(f"unknown style {style!r}")
    settings = reply_settings(message.owner_id)
    signature = signature_for(message.account)
    name, address = first_recipient or (message.from_name, message.from_address)
    addressee = addressee_name(name, address, settings.address_form)
    template = template_reply(style, settings, addressee, signature)
    if _writer is None:
        return Written(template, "template")
    brief = ReplyBrief(
        style=style,
        greeting=_greeting(settings.greeting.strip(), addressee) if settings.greeting.strip() else "",
        closing=settings.closing.strip(),
        address_form=settings.address_form,
        instructions=settings.instructions.strip(),
        signature=signature,
        # "Schmidt, Anna" -> "Anna Schmidt": the model's greeting then reads naturally once unmasked.
        addressee=addressee_name(message.from_name, "", ReplySettings.AddressForm.FORMAL) or message.from_name,
        reply_to=[format_pair(n, a) for n, a in _original_headers(message)["reply-to"]],
    )
    try:
        written = _writer(message, brief)
    except WriterFailed as exc:
        return Written(template, "template", stored_text.dump(stored_text.message_of(exc), 300))
    return written or Written(template, "template")


def compose_body(message: Message, kind: str, style: str, first_recipient: Pair | None) -> Written:
    """The whole body of a new draft: reply text and quote, or signature and forwarded message."""
    if kind == Draft.Kind.FORWARD:
        signature = signature_for(message.account)
        top = f"\n\n{signature}\n\n" if signature else "\n\n"
        return Written(top + forward_block(message), "template")
    written = write_reply(message, style, first_recipient)
    written.body = f"{written.body}\n\n{quote(message)}"
    return written


# --------------------------------------------------------------------------------------------------
# Drafts
# --------------------------------------------------------------------------------------------------


def create_draft(message: Message, kind: str, style: str = Draft.Style.FRIENDLY) -> Draft:
    """A new draft answering (or forwarding) `message`, written and saved; the user edits it next."""
    if kind not in Draft.Kind.values or kind == Draft.Kind.NEW:
        raise ValueError(f"unknown kind {kind!r}")
    own = own_addresses(message.owner_id)
    to, cc = recipients(message, kind, own)
    written = compose_body(message, kind, style, to[0] if to else None)
    if kind == Draft.Kind.FORWARD:
        subject, in_reply_to, references = forward_subject(message.subject), "", []
    else:
        subject = reply_subject(message.subject)
        in_reply_to = message.message_id
        references = [r for r in message.references if r != message.message_id]
        if message.message_id:
            references.append(message.message_id)
    draft = Draft(
        owner_id=message.owner_id,
        account=message.account,
        original=message,
        kind=kind,
        style=style,
        to=format_list(to),
        cc=format_list(cc),
        subject=subject,
        body=written.body,
        in_reply_to=in_reply_to,
        references=_trim_references(references),
        generated_by=written.generated_by,
        fallback_reason=written.fallback_reason,
    )
    draft.save()
    return draft


def create_new_draft(account: MailAccount) -> Draft:
    """An empty new message from `account`: the account's signature below the space for the text."""
    signature = signature_for(account)
    return Draft.objects.create(
        owner_id=account.owner_id,
        account=account,
        kind=Draft.Kind.NEW,
        body=f"\n\n{signature}" if signature else "",
        generated_by="",
    )


def _trim_references(references: list[str], keep: int = 20) -> list[str]:
    """A very long chain keeps its root and the newest ids (RFC 5322 3.6.4), so threading still works."""
    if len(references) <= keep:
        return references
    return [references[0], *references[-(keep - 1) :]]


def rewrite(draft: Draft, style: str) -> Draft:
    """Write the draft's text again in another style (the recipients and subject stay as they are)."""
    if draft.kind == Draft.Kind.FORWARD or not draft.editable:
        return draft
    first = next(iter(parse_address_list_lenient(draft.to)), None)
    written = compose_body(draft.original, draft.kind, style, first)  # no lock held while the LLM writes
    with transaction.atomic():
        if not Draft.objects.select_for_update().get(pk=draft.pk).editable:
            return draft
        draft.style, draft.body = style, written.body
        draft.generated_by, draft.fallback_reason = written.generated_by, written.fallback_reason
        draft.save(update_fields=["style", "body", "generated_by", "fallback_reason", "updated_at"])
    return draft


def parse_address_list_lenient(text: str) -> list[Pair]:
    try:
        return parse_address_list(text)
    except AddressListError:
        return []


@transaction.atomic
def update_draft(draft: Draft, *, to: str, cc: str, subject: str, body: str, bcc: str = "") -> bool:
    """Save the user's edits; False (nothing saved) once the draft is being sent or was sent."""
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if not locked.editable:
        return False
    draft.to, draft.cc, draft.bcc, draft.subject, draft.body = to, cc, bcc, subject, body
    draft.save(update_fields=["to", "cc", "bcc", "subject", "body", "updated_at"])
    return True


def save_settings(owner_id: int, *, greeting: str, closing: str, address_form: str, instructions: str) -> None:
    row = reply_settings(owner_id)
    row.greeting, row.closing, row.address_form, row.instructions = greeting, closing, address_form, instructions
    row.save()


def save_signature(account: MailAccount, text: str) -> None:
    row = AccountSignature.objects.filter(account=account).first() or AccountSignature(
        account=account, owner_id=account.owner_id
    )
    row.text = text
    row.save()
