"""Invitations in the shapes the big calendar programs send them, written after their published output:
Exchange/Outlook (Windows time zone names, text/calendar as an alternative part), Google Calendar
(multipart/mixed with the calendar both inline and as invite.ics, IANA zones, RRULE), Apple
Calendar (an iCal-*.ics attachment, X-LIC-LOCATION), Thunderbird (all-day VALUE=DATE, the old
/mozilla.org/ vendor TZID). Each builder takes what tests vary."""

from __future__ import annotations

from email.message import EmailMessage

ME = "me@example.test"

OUTLOOK_TZ = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


def outlook_ics(
    *, method: str = "REQUEST", uid: str = "040000008200E00074C5B7101A82E00800000000D0A1B2C3", sequence: int = 0,
    start: str = "20270115T100000", end: str = "20270115T113000", summary: str = "Quartalsplanung",
    timezone_block: str = OUTLOOK_TZ, tzid: str = "W. Europe Standard Time",
) -> str:  # fmt: skip
    status = "CANCELLED" if method == "CANCEL" else "CONFIRMED"
    return f"""BEGIN:VCALENDAR
METHOD:{method}
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
{timezone_block}BEGIN:VEVENT
ORGANIZER;CN=Max Muster:mailto:max@contoso.example
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Me Myself:mailto:{ME}
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE;CN=Erika Beispiel:mailto:erika@contoso.example
DESCRIPTION;LANGUAGE=de-DE:Agenda folgt\\n
UID:{uid}
SUMMARY;LANGUAGE=de-DE:{summary}
DTSTART;TZID={tzid}:{start}
DTEND;TZID={tzid}:{end}
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20261201T090000Z
TRANSP:OPAQUE
STATUS:{status}
SEQUENCE:{sequence}
LOCATION;LANGUAGE=de-DE:Raum 4.12
X-MICROSOFT-CDO-APPT-SEQUENCE:{sequence}
X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY
X-MICROSOFT-DISALLOW-COUNTER:FALSE
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def google_ics(*, uid: str = "7kukuqrfedlm2f6t2rs1r5p4ut@google.com") -> str:
    return f"""BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:REQUEST
BEGIN:VTIMEZONE
TZID:America/New_York
X-LIC-LOCATION:America/New_York
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
DTSTART;TZID=America/New_York:20270201T090000
DTEND;TZID=America/New_York:20270201T093000
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10
DTSTAMP:20261201T120000Z
ORGANIZER;CN=Sam Lee:mailto:sam@gmail.example
UID:{uid}
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE
 ;CN=Sam Lee;X-NUM-GUESTS=0:mailto:sam@gmail.example
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=
 TRUE;CN={ME};X-NUM-GUESTS=0:mailto:{ME}
X-MICROSOFT-CDO-OWNERAPPTID:-1234567890
CREATED:20261201T115900Z
DESCRIPTION:-::~:~::~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:
 ~:~:~:~:~:~:~::~:~::-\\nJoin with Google Meet: https://meet.google.com/abc-def
 g-hij\\n
LAST-MODIFIED:20261201T120000Z
LOCATION:
SEQUENCE:0
STATUS:CONFIRMED
SUMMARY:Weekly sync
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def apple_ics() -> str:
    return f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 15.1//EN
CALSCALE:GREGORIAN
METHOD:REQUEST
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
DTSTART:19810329T020000
TZNAME:MESZ
TZOFFSETTO:+0200
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
DTSTART:19961027T030000
TZNAME:MEZ
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
TRANSP:OPAQUE
DTEND;TZID=Europe/Berlin:20270301T150000
ORGANIZER;CN="Jo Apple";EMAIL="jo@icloud.example":mailto:jo@icloud.example
UID:6B29E5B8-9D2B-4F2C-8D0B-9E6F8F0C1A2B
DTSTAMP:20261202T080000Z
LOCATION:Café Central\\, Wien
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
SEQUENCE:0
SUMMARY:Kaffee
LAST-MODIFIED:20261202T080000Z
CREATED:20261202T075900Z
DTSTART;TZID=Europe/Berlin:20270301T140000
ATTENDEE;CN="Jo Apple";CUTYPE=INDIVIDUAL;EMAIL="jo@icloud.example";PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:jo@icloud.example
ATTENDEE;CN="Me";CUTYPE=INDIVIDUAL;EMAIL="{ME}";PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:{ME}
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def thunderbird_all_day_ics() -> str:
    return f"""BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
CREATED:20261203T100000Z
LAST-MODIFIED:20261203T100000Z
DTSTAMP:20261203T100000Z
UID:4f1c3a2e-7a63-4c8e-9f0a-2b6d1e5c7a90
SUMMARY:Betriebsausflug
ORGANIZER;RSVP=TRUE;CN=Tom Bird;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:tom@tb.example
ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:{ME}
DTSTART;VALUE=DATE:20270320
DTEND;VALUE=DATE:20270322
TRANSP:TRANSPARENT
SEQUENCE:0
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def thunderbird_vendor_tz_ics() -> str:
    return f"""BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:9a8b7c6d-0000-4e5f-8a9b-cafe00000001
SUMMARY:Stammtisch
ORGANIZER;CN=Tom Bird:mailto:tom@tb.example
ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:{ME}
DTSTART;TZID=/mozilla.org/20070129_1/Europe/Berlin:20270705T190000
DTEND;TZID=/mozilla.org/20070129_1/Europe/Berlin:20270705T220000
DTSTAMP:20261203T100000Z
SEQUENCE:0
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def invitation_mail(ics: str, *, shape: str = "outlook", n: int = 1, subject: str = "Einladung") -> bytes:
    """The message around the calendar, as each program builds it."""
    method = "CANCEL" if "METHOD:CANCEL" in ics else "REQUEST"
    msg = EmailMessage()
    msg["From"] = "Organiser <organiser@example.org>"
    msg["To"] = ME
    msg["Subject"] = subject
    msg["Message-ID"] = f"<invite-{shape}-{n}@example.org>"
    msg.set_content("You have been invited.")
    if shape == "outlook":  # multipart/alternative: text, then the calendar
        msg.add_alternative(ics, subtype="calendar", params={"method": method})
    elif shape == "google":  # the calendar inline and as invite.ics
        msg.add_alternative(ics, subtype="calendar", params={"method": method})
        msg.add_attachment(ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
    else:  # apple / thunderbird: an attachment
        msg.add_attachment(ics, subtype="calendar", params={"method": method}, filename=f"{shape}.ics")
    return msg.as_bytes()
