"""Reading invitations as the big calendar programs write them (no database: events/ical.py is pure)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from events import ical
from tests.events.factories import (
    ME,
    OUTLOOK_TZ,
    apple_ics,
    google_ics,
    outlook_ics,
    thunderbird_all_day_ics,
    thunderbird_vendor_tz_ics,
)

BERLIN = ZoneInfo("Europe/Berlin")


def parse(text: str, zone=UTC) -> ical.ParsedEvent:
    return ical.parse(text.encode(), zone)


def test_outlook_windows_zone_names_resolve_to_their_iana_zone():
    event = parse(outlook_ics())
    assert (event.method, event.summary, event.location) == ("REQUEST", "Quartalsplanung", "Raum 4.12")
    assert event.starts_at == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 CET
    assert event.ends_at == datetime(2027, 1, 15, 10, 30, tzinfo=UTC)
    assert event.time_zone == "Europe/Berlin" and not event.zone_note
    assert (event.organizer_email, event.organizer_name) == ("max@contoso.example", "Max Muster")
    me, erika = event.attendees
    assert (me.email, me.name, me.partstat, me.role) == (ME, "Me Myself", "NEEDS-ACTION", "REQ-PARTICIPANT")
    assert erika.partstat == "ACCEPTED"


def test_summer_time_is_applied():
    event = parse(outlook_ics(start="20270715T100000", end="20270715T110000"))
    assert event.starts_at == datetime(2027, 7, 15, 8, 0, tzinfo=UTC)  # 10:00 CEST


def test_google_recurrence_and_folded_attendee_lines():
    event = parse(google_ics())
    assert event.starts_at == datetime(2027, 2, 1, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert event.recurrence == "FREQ=WEEKLY;COUNT=10;BYDAY=MO"
    assert ical.describe_recurrence(event.recurrence) == "every week on Monday, 10 times"
    assert [a.email for a in event.attendees] == ["sam@gmail.example", ME]
    assert event.uid.endswith("@google.com") and event.location == ""


def test_apple_quoted_parameters_and_escaped_text():
    event = parse(apple_ics())
    assert event.starts_at == datetime(2027, 3, 1, 13, 0, tzinfo=UTC)
    assert event.location == "Café Central, Wien"
    assert (event.organizer_email, event.organizer_name) == ("jo@icloud.example", "Jo Apple")


def test_thunderbird_all_day_and_vendor_zone_ids():
    all_day = parse(thunderbird_all_day_ics())
    assert all_day.all_day and all_day.starts_at == datetime(2027, 3, 20, tzinfo=UTC)
    assert all_day.ends_at == datetime(2027, 3, 22, tzinfo=UTC)  # exclusive: two days
    vendor = parse(thunderbird_vendor_tz_ics())
    assert vendor.starts_at == datetime(2027, 7, 5, 17, 0, tzinfo=UTC) and vendor.time_zone == "Europe/Berlin"


def test_a_cancel_is_read_as_cancelled():
    event = parse(outlook_ics(method="CANCEL", sequence=1))
    assert event.method == "CANCEL" and event.cancelled and event.sequence == 1


def test_floating_times_are_the_readers_local_time():
    text = thunderbird_vendor_tz_ics().replace(";TZID=/mozilla.org/20070129_1/Europe/Berlin", "")
    assert parse(text, BERLIN).starts_at == datetime(2027, 7, 5, 17, 0, tzinfo=UTC)
    assert parse(text, UTC).starts_at == datetime(2027, 7, 5, 19, 0, tzinfo=UTC)


def test_a_calendars_own_zone_is_used_for_a_name_nobody_knows_and_only_for_that_calendar():
    custom = (
        OUTLOOK_TZ.replace("W. Europe Standard Time", "Custom Plus Three")
        .replace("+0100", "+0300")
        .replace("+0200", "+0300")
    )
    own = parse(outlook_ics(timezone_block=custom, tzid="Custom Plus Three"))
    assert own.starts_at == datetime(2027, 1, 15, 7, 0, tzinfo=UTC) and not own.zone_note
    # Another calendar naming the zone without defining it does not get the first one's definition.
    other = parse(outlook_ics(timezone_block="", tzid="Custom Plus Three"))
    assert other.starts_at == datetime(2027, 1, 15, 10, 0, tzinfo=UTC) and "unknown" in other.zone_note


def test_a_hostile_definition_of_a_known_zone_changes_nothing():
    hostile = OUTLOOK_TZ.replace("+0100", "+0500").replace("+0200", "+0500")
    assert parse(outlook_ics(timezone_block=hostile)).starts_at == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    assert parse(outlook_ics()).starts_at == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)


def test_a_zone_block_dateutil_cannot_read_does_not_lose_the_event():
    odd = OUTLOOK_TZ.replace("TZID:W. Europe Standard Time", "TZID:Odd Zone\nTID:Odd Zone")
    event = parse(outlook_ics(timezone_block=odd.replace("\n", "\r\n"), tzid="Odd Zone"))
    assert event.summary == "Quartalsplanung" and "unknown" in event.zone_note


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not a calendar", "cannot be read"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no event"),
        (outlook_ics().replace("UID:", "X-NO-UID:").encode(), "no UID"),
        (b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"x" * 1_000_001 + b"\r\nEND:VCALENDAR\r\n", "larger than"),
        (outlook_ics().encode()[:200], "cannot be read"),
    ],
)
def test_unreadable_calendars_say_why(data, reason):
    with pytest.raises(ical.InvalidCalendar, match=reason):
        ical.parse(data, UTC)


def test_describe_recurrence():
    assert ical.describe_recurrence("FREQ=DAILY") == "every day"
    assert (
        ical.describe_recurrence("FREQ=MONTHLY;INTERVAL=2;UNTIL=20271231T000000Z") == "every 2 months, until 2027-12-31"
    )
    assert ical.describe_recurrence("FREQ=SECONDLY") == "FREQ=SECONDLY"
