"""Unsubscribe from a sender the way its mail offers, best first.

1. One click (RFC 8058): the message has ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` and an
   https URI in ``List-Unsubscribe``: a POST with exactly that body, no cookies, no redirects followed.
   This is the only way that needs nothing more from the user, which is why mailbox providers ask bulk
   senders for it.
2. ``mailto:`` (RFC 2369): a short mail from the user's account through its SMTP server, with the
   subject and body the URI asks for.
3. A web link: only the user can finish there (it usually asks for a confirmation), so the page shows it.

Each attempt is recorded (newsletters.models.Unsubscription) without the URI: list links carry a
token that identifies the recipient, and they stay only in the encrypted message. All HTTP goes
through core.outbound (no loopback, link-local or private addresses unless the operator allows them)
and trusts the same certificates as IMAP and SMTP. DKIM is not checked: the user chose this sender
from their own mail, and the worst a forged header can do is make us POST to a public URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from django.utils.translation import gettext, gettext_noop

from core import outbound
from core.stored_text import Text, dump, message_of
from mail.connecting import tls_context
from mail.models import MailAccount, Message
from mail.sending import SendError, deliver, smtp_config
from rules import editing, spec
from rules.models import Rule

from .models import Unsubscription

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 15.0
_MAX_URIS = 10  # a header is the sender's to write: more than a handful is not a real offer


class NotFound(Exception):
    """The user has no list mail from this sender (or it is another user's)."""


@dataclass(frozen=True)
class Mailto:
    address: str
    subject: str
    body: str


@dataclass(frozen=True)
class Options:
    """What one message offers; each is None when it does not."""

    one_click: str | None = None
    mailto: Mailto | None = None
    link: str | None = None


@dataclass(frozen=True)
class Outcome:
    unsubscription: Unsubscription
    link: str | None = None  # for the page when the user has to finish on the sender's site


def options_of(raw: bytes | None) -> Options:
    """Read List-Unsubscribe and List-Unsubscribe-Post of a stored message; malformed parts are skipped."""
    if not raw:
        return Options()
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    try:
        value = str(headers.get("List-Unsubscribe", "") or "")
        post = str(headers.get("List-Unsubscribe-Post", "") or "")
    except (ValueError, TypeError, IndexError):  # a header the parser cannot decode: offers nothing
        return Options()
    uris = [part.strip().strip("<>").strip() for part in value.split(",")][:_MAX_URIS]
    https = [u for u in uris if urlsplit(u).scheme.lower() == "https" and urlsplit(u).hostname]
    web = https + [u for u in uris if urlsplit(u).scheme.lower() == "http" and urlsplit(u).hostname]
    one_click = "list-unsubscribe=one-click" in post.replace(" ", "").lower()
    return Options(
        one_click=https[0] if one_click and https else None,
        mailto=next(filter(None, (_mailto(u) for u in uris)), None),
        link=web[0] if web else None,
    )


def _mailto(uri: str) -> Mailto | None:
    parts = urlsplit(uri)
    if parts.scheme.lower() != "mailto":
        return None
    address = unquote(parts.path).strip()
    if "@" not in address or any(c in address for c in "\r\n,; "):
        return None
    query = parse_qs(parts.query)
    subject = (query.get("subject") or ["unsubscribe"])[0].replace("\r", " ").replace("\n", " ")[:200]
    return Mailto(address, subject or "unsubscribe", (query.get("body") or ["unsubscribe"])[0][:2000])


def latest_offer(owner_id: int, sender: str) -> Message:
    """The user's newest message from the sender that carries an unsubscribe header."""
    message = (
        Message.objects.filter(owner_id=owner_id, from_address=sender, expunged_at__isnull=True)
        .order_by("-has_list_unsubscribe", "-sort_date")
        .select_related("account")
        .first()
    )
    if message is None:
        raise NotFound(sender)
    return message


def unsubscribe(owner_id: int, sender: str, archive: bool = False) -> Outcome:
    """Try the best offer of the sender's newest list mail, record what happened, and with `archive`
    add a rule that archives the sender's mail (the caller runs it over the existing mail)."""
    message = latest_offer(owner_id, sender)
    offer = options_of(message.raw) if message.has_list_unsubscribe else Options()
    method, state, detail, link = _attempt(offer, message.account)
    rule = archive_rule(owner_id, sender) if archive else None
    record = Unsubscription.objects.create(
        owner_id=owner_id, account=message.account, sender=sender, method=method, state=state,
        detail=dump(detail, 300), archive_rule=rule,
    )  # fmt: skip
    log.info("unsubscription %s of user %s: %s by %s", record.pk, owner_id, state, method)
    return Outcome(record, link if state == Unsubscription.State.MANUAL else None)


def _attempt(offer: Options, account: MailAccount) -> tuple[str, str, Text | list[Text], str | None]:
    """(method, state, detail, link): one click, else mailto, else the link; a failure falls through."""
    problems: list[Text] = []
    if offer.one_click:
        problem = post_one_click(offer.one_click)
        if not problem:
            return Unsubscription.Method.ONE_CLICK, Unsubscription.State.DONE, "", None
        problems.append(Text(gettext_noop("one-click: %(problem)s"), problem=problem))
    if offer.mailto:
        problem = send_mailto(account, offer.mailto)
        if not problem:
            return Unsubscription.Method.MAILTO, Unsubscription.State.DONE, problems, None
        problems.append(Text(gettext_noop("e-mail: %(problem)s"), problem=problem))
    if offer.link:
        return Unsubscription.Method.LINK, Unsubscription.State.MANUAL, problems, offer.link
    if problems:
        method = Unsubscription.Method.MAILTO if offer.mailto else Unsubscription.Method.ONE_CLICK
        return method, Unsubscription.State.FAILED, problems, None
    return (
        Unsubscription.Method.NONE,
        Unsubscription.State.FAILED,
        Text(gettext_noop("The sender's mail offers no way to unsubscribe.")),
        None,
    )


def post_one_click(url: str) -> Text | str:
    """POST ``List-Unsubscribe=One-Click`` (RFC 8058 section 3.2); "" when the sender accepted it.

    The text of a failure names what happened, never the URL (it carries the recipient's token).
    """
    try:
        with (
            outbound.quiet_http_logs(),
            httpx.Client(
                transport=outbound.HTTPTransport(ssl_context=tls_context()),
                trust_env=False,
                timeout=httpx.Timeout(HTTP_TIMEOUT, connect=min(HTTP_TIMEOUT, 10.0)),
                follow_redirects=False,
                headers={"User-Agent": "Mailhelper (RFC 8058 one-click unsubscribe)"},
            ) as client,
        ):
            response = client.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
    except outbound.PolicyRefused:
        return Text(gettext_noop("the sender's server is at an address this server may not contact"))
    except httpx.TimeoutException:
        return Text(gettext_noop("the sender's server did not answer in time"))
    except httpx.HTTPError as exc:
        return Text(gettext_noop("could not reach the sender's server (%(error)s)"), error=type(exc).__name__)
    if 200 <= response.status_code < 300:
        return ""
    if 300 <= response.status_code < 400:
        return Text(
            gettext_noop("the sender's server answered with a redirect (%(status)s), which is not followed"),
            status=response.status_code,
        )
    return Text(gettext_noop("the sender's server refused it (HTTP %(status)s)"), status=response.status_code)


def send_mailto(account: MailAccount, mailto: Mailto) -> Text | str:
    """Send the unsubscribe mail from the account; "" when the SMTP server took it."""
    message = EmailMessage()
    message["From"] = account.email_address
    message["To"] = mailto.address
    message["Subject"] = mailto.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=account.email_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: not a person writing, no auto-replies please
    message.set_content(mailto.body)
    try:
        refused = deliver(smtp_config(account), account.email_address, [mailto.address], message.as_bytes())
    except SendError as exc:
        return message_of(exc)
    return Text(gettext_noop("the SMTP server refused the list's address")) if refused else ""


def archive_rule(owner_id: int, sender: str) -> Rule:
    """A rule that archives the sender's mail, now (the caller runs it) and as it arrives; the same
    rule again when the user already has it (unsubscribing twice makes no second rule)."""
    document = spec.normalize_rule(
        {
            "match": "all",
            "conditions": [{"field": "from", "op": "equals", "value": sender, "negate": False}],
            "actions": [{"type": "archive", "value": None}],
        }
    )
    existing = Rule.objects.filter(owner_id=owner_id, definition=document).first()
    if existing is not None:
        return existing
    return editing.save(
        owner_id,
        None,
        name=(gettext("Archive mail from %(sender)s") % {"sender": sender})[:120],
        enabled=True,
        document=document,
    )
