"""Invitations through the real product: synced from Dovecot, shown on the message page, answered by
iMIP REPLY at the SMTP sink, updated and cancelled by later mail, scoped to their owner."""

from __future__ import annotations

import io
import json
import zipfile
from email import message_from_bytes
from email.policy import default as default_policy

import icalendar
import pytest
from django.urls import reverse

from events.models import Event
from mail.models import Message
from mailhelper.data_export import export_user_data
from tests.events.factories import (
    ME,
    apple_ics,
    google_ics,
    invitation_mail,
    outlook_ics,
    thunderbird_all_day_ics,
)
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(alice, dovecot, imap_user, smtp_sink):
    return create_account(
        alice.user, imap_user, dovecot, smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security="plain"
    )


def deliver(dovecot, imap_user, account, *raws: bytes) -> None:
    for raw in raws:
        dovecot.deliver(imap_user, raw)
    run_sync(account)


def page_of(client, event: Event) -> str:
    return client.get(reverse("mail:message", args=[event.message_id])).content.decode()


def answer(client, event: Event, choice: str):
    return client.post(reverse("events:answer", args=[event.pk]), {"answer": choice})


@pytest.mark.parametrize(
    ("ics", "shape", "summary"),
    [
        (outlook_ics(), "outlook", "Quartalsplanung"),
        (google_ics(), "google", "Weekly sync"),
        (apple_ics(), "apple", "Kaffee"),
        (thunderbird_all_day_ics(), "thunderbird", "Betriebsausflug"),
    ],
)
def test_each_programs_invitation_gets_a_card(ics, shape, summary, alice_client, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, invitation_mail(ics, shape=shape))
    event = Event.objects.get()
    assert event.method == "REQUEST" and event.summary == summary and not event.parse_error
    page = page_of(alice_client, event)
    assert 'data-testid="event-card"' in page and summary in page
    assert "Accept</button>" in page and "Download as .ics" in page
    download = alice_client.get(reverse("mail:attachment", args=[event.source_id]))
    assert download.status_code == 200 and b"BEGIN:VCALENDAR" in b"".join(download)


def test_the_card_says_when_in_the_users_time_zone(alice_client, account, dovecot, imap_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    deliver(dovecot, imap_user, account, invitation_mail(google_ics(), shape="google"))
    page = page_of(alice_client, Event.objects.get())
    assert "Monday, 1 February 2027, 15:00 – 15:30" in page  # 09:00 New York
    assert "repeats every week on Monday, 10 times" in page


def test_accepting_sends_an_imip_reply_to_the_organiser(alice_client, account, dovecot, imap_user, smtp_sink):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics()))
    event = Event.objects.get()

    response = answer(alice_client, event, "accepted")
    assert response.status_code == 302
    [sent] = smtp_sink.messages
    assert sent.rcpt_tos == ["max@contoso.example"] and sent.mail_from == ME
    mail = message_from_bytes(sent.data, policy=default_policy)
    assert mail["Subject"] == "Accepted: Quartalsplanung"
    assert mail["In-Reply-To"] == "<invite-outlook-1@example.org>"
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REPLY"
    reply = icalendar.Calendar.from_ical(part.get_content())
    assert str(reply["METHOD"]) == "REPLY"
    [vevent] = reply.walk("VEVENT")
    assert str(vevent["UID"]) == "040000008200E00074C5B7101A82E00800000000D0A1B2C3"
    assert int(vevent["SEQUENCE"]) == 0 and str(vevent["ORGANIZER"]) == "mailto:max@contoso.example"
    attendee = vevent["ATTENDEE"]
    assert not isinstance(attendee, list)  # exactly one: the user
    assert str(attendee) == f"mailto:{ME}" and attendee.params["PARTSTAT"] == "ACCEPTED"
    assert vevent["DTSTART"].to_ical() == b"20270115T090000Z"

    event.refresh_from_db()
    assert event.answer == "accepted" and event.answered_at is not None
    answer(alice_client, event, "accepted")  # a double click
    assert len(smtp_sink.messages) == 1
    assert "You answered: <strong" in page_of(alice_client, event)

    answer(alice_client, event, "declined")  # changing the answer sends a new reply
    assert len(smtp_sink.messages) == 2
    assert message_from_bytes(smtp_sink.messages[1].data, policy=default_policy)["Subject"].startswith("Declined:")


def test_a_failed_send_records_nothing_as_answered(alice_client, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics()))
    event = Event.objects.get()
    account.smtp_host = ""
    account.save()
    response = answer(alice_client, event, "tentative")
    page = alice_client.get(response.url).content.decode()
    assert "The answer was not sent" in page and "no SMTP server" in page
    event.refresh_from_db()
    assert event.answer == "" and "no SMTP server" in event.answer_error


def test_an_update_supersedes_and_a_cancel_cancels(alice_client, account, dovecot, imap_user, smtp_sink):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics(), n=1))
    moved = outlook_ics(sequence=1, start="20270116T100000", end="20270116T113000")
    deliver(dovecot, imap_user, account, invitation_mail(moved, n=2))
    first, second = Event.objects.order_by("sequence")
    assert first.superseded and not second.superseded
    assert "A newer invitation" in page_of(alice_client, first) and "Accept</button>" not in page_of(
        alice_client, first
    )

    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics(method="CANCEL", sequence=2), n=3))
    second.refresh_from_db()
    assert second.cancelled
    page = page_of(alice_client, second)
    assert 'data-testid="event-cancelled"' in page and "Accept</button>" not in page
    answer(alice_client, second, "accepted")
    assert smtp_sink.messages == []  # a cancelled event cannot be answered
    cancel = Event.objects.get(method="CANCEL")
    assert "Cancelled: Quartalsplanung" in page_of(alice_client, cancel)


def test_an_overlapping_accepted_event_is_named(alice_client, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics(uid="first-uid", summary="Budget"), n=1))
    budget = Event.objects.get()
    answer(alice_client, budget, "accepted")
    later = outlook_ics(uid="second-uid", summary="Review", start="20270115T110000", end="20270115T120000")
    apart = outlook_ics(uid="third-uid", summary="Lunch", start="20270115T130000", end="20270115T140000")
    deliver(dovecot, imap_user, account, invitation_mail(later, n=2), invitation_mail(apart, n=3))
    review = Event.objects.get(message__message_id="invite-outlook-2@example.org")
    lunch = Event.objects.get(message__message_id="invite-outlook-3@example.org")
    assert "Overlaps with" in page_of(alice_client, review) and "Budget" in page_of(alice_client, review)
    assert "Overlaps with" not in page_of(alice_client, lunch)


def test_a_broken_invitation_costs_its_card_not_the_sync(alice_client, account, dovecot, imap_user):
    broken = invitation_mail("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n", n=1)
    deliver(dovecot, imap_user, account, broken, invitation_mail(apple_ics(), shape="apple", n=2))
    assert Message.objects.filter(account=account).count() == 2
    bad = Event.objects.get(message__message_id="invite-outlook-1@example.org")
    assert bad.parse_error
    page = page_of(alice_client, bad)
    assert "could not be read" in page and "Accept</button>" not in page
    assert Event.objects.get(message__message_id="invite-apple-2@example.org").summary == "Kaffee"


def test_another_users_event_cannot_be_answered(alice_client, bob, account, dovecot, imap_user, smtp_sink):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics()))
    event = Event.objects.get()
    assert answer(verified_client(bob), event, "accepted").status_code == 404
    assert smtp_sink.messages == [] and Event.objects.get().answer == ""


def test_the_data_export_holds_the_events_and_answers(alice, alice_client, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, invitation_mail(outlook_ics()))
    answer(alice_client, Event.objects.get(), "accepted")
    out = io.BytesIO()
    counts = export_user_data(alice.user, out)
    [event] = json.loads(zipfile.ZipFile(out).read("calendar.json"))["events"]
    assert counts["calendar_events"] == 1
    assert (event["summary"], event["answer"], event["organizer"]) == (
        "Quartalsplanung",
        "accepted",
        "max@contoso.example",
    )
    assert event["message"].endswith(".eml")
