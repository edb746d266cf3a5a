"""Accept, tentatively accept or decline an invitation: an iMIP REPLY (RFC 6047, RFC 5546 3.2.3)
to the organiser through the account's own SMTP server, then the answer on the event.

The REPLY carries what RFC 5546 requires of it (METHOD:REPLY; a VEVENT with UID, SEQUENCE,
DTSTAMP, ORGANIZER and exactly one ATTENDEE, the user, with PARTSTAT) plus DTSTART and SUMMARY
so that a calendar without the original still shows what was answered. Times are written in UTC:
no VTIMEZONE to copy, nothing to get wrong. Organiser calendars (Exchange, Google, iCloud) match
the reply by UID and the attendee's address, so the attendee is the address the invitation was
sent to when it is one of the user's accounts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

import icalendar
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from core.stored_text import Text, dump, message_of
from mail.models import MailAccount
from mail.sending import SendError, deliver, new_message_id, smtp_config

from .models import Event

log = logging.getLogger(__name__)

PARTSTAT = {Event.Answer.ACCEPTED: "ACCEPTED", Event.Answer.TENTATIVE: "TENTATIVE", Event.Answer.DECLINED: "DECLINED"}
SUBJECT = {Event.Answer.ACCEPTED: "Accepted", Event.Answer.TENTATIVE: "Tentative", Event.Answer.DECLINED: "Declined"}
_DONE = {
    Event.Answer.ACCEPTED: "accepted",
    Event.Answer.TENTATIVE: "tentatively accepted",
    Event.Answer.DECLINED: "declined",
}


class AnswerError(Exception):
    """The answer was not sent; the text is for the user."""


def answer(event_id, owner_id: int, choice: str) -> Event:
    """Send the REPLY and record the answer. The row is locked while the SMTP server is talked to,
    so a double click sends one reply, not two."""
    if choice not in PARTSTAT:
        raise AnswerError(gettext("Choose accept, tentative or decline."))
    problem: Text | str = ""
    with transaction.atomic():
        event = Event.objects.select_for_update().select_related("message__account").get(pk=event_id, owner_id=owner_id)
        if not event.answerable:
            raise AnswerError(_why_not(event))
        if event.answer == choice:
            return event  # already sent: a repeated click changes nothing
        account = event.message.account
        attendee = my_address(event, account)
        raw = reply_message(event, choice, account, attendee).as_bytes()
        try:
            if deliver(smtp_config(account), account.email_address, [event.organizer_email], raw):
                problem = Text(gettext_noop("The SMTP server refused the organiser's address."))
        except SendError as exc:
            problem = message_of(exc)
        if problem:
            event.answer_error = dump(problem, 300)  # a core.stored_text: the card shows it in its language
            event.save(update_fields=["answer_error"])
        else:
            event.answer, event.answered_at, event.answer_error = choice, timezone.now(), ""
            event.save(update_fields=["answer", "answered_at", "answer_error"])
    if problem:  # raised after the commit, so the row keeps why
        raise AnswerError(gettext("The answer was not sent: %(problem)s") % {"problem": problem})
    log.info("event %s answered %s", event.pk, choice)
    return event


def _why_not(event: Event) -> str:
    if event.cancelled:
        return gettext("This event was cancelled.")
    if event.parse_error:
        return gettext("This invitation could not be read, so it cannot be answered.")
    if not event.organizer_email:
        return gettext("This invitation names no organiser to answer.")
    return gettext("Only invitations (requests) can be answered.")


def my_address(event: Event, account: MailAccount) -> str:
    """The attendee the invitation addressed among the user's accounts, else this account's address."""
    own = {
        a.lower() for a in MailAccount.objects.filter(owner_id=event.owner_id).values_list("email_address", flat=True)
    }
    invited = [a["email"] for a in event.attendees if a["email"] in own]
    if account.email_address.lower() in invited:
        return account.email_address.lower()
    return invited[0] if invited else account.email_address.lower()


def reply_calendar(event: Event, choice: str, attendee: str, now: datetime | None = None) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Mailhelper//iMIP reply//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", (now or timezone.now()).astimezone(UTC))
    if event.starts_at is not None:
        vevent.add("dtstart", event.starts_at.date() if event.all_day else event.starts_at.astimezone(UTC))
    if event.recurrence_id is not None:
        vevent.add("recurrence-id", event.recurrence_id.astimezone(UTC))
    if event.summary:
        vevent.add("summary", event.summary)
    organizer = icalendar.vCalAddress(f"mailto:{event.organizer_email}")
    if event.organizer_name:
        organizer.params["CN"] = icalendar.vText(event.organizer_name)
    vevent.add("organizer", organizer)
    me = icalendar.vCalAddress(f"mailto:{attendee}")
    me.params["PARTSTAT"] = icalendar.vText(PARTSTAT[choice])
    name = next((a["name"] for a in event.attendees if a["email"] == attendee and a["name"]), "")
    if name:
        me.params["CN"] = icalendar.vText(name)
    vevent.add("attendee", me)
    calendar.add_component(vevent)
    return calendar.to_ical()


def reply_message(event: Event, choice: str, account: MailAccount, attendee: str) -> EmailMessage:
    now = timezone.now()
    msg = EmailMessage(policy=SMTP_POLICY)
    owner = account.owner
    msg["From"] = Address(display_name=owner.get_full_name(), addr_spec=account.email_address)
    msg["To"] = Address(display_name=event.organizer_name, addr_spec=event.organizer_email)
    msg["Subject"] = f"{SUBJECT[choice]}: {event.summary or 'invitation'}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{new_message_id(account)}>"
    if event.message.message_id:
        msg["In-Reply-To"] = msg["References"] = f"<{event.message.message_id}>"
    msg.set_content(f"{attendee} has {_DONE[choice]} this invitation: {event.summary or '(no title)'}.\n")
    msg.add_alternative(
        reply_calendar(event, choice, attendee, now).decode("utf-8"), subtype="calendar", params={"method": "REPLY"}
    )
    return msg
