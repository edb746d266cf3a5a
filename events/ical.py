"""An invitation's calendar part (RFC 5545 / iTIP RFC 5546) read into what the event card shows.

Pure: bytes in, a ParsedEvent out, no models. Parsing is the `icalendar` package's; time zones are
resolved here, per calendar, and never through icalendar's process-wide cache of VTIMEZONEs: that
cache keeps the first definition of a TZID it meets, so one sender's invitation defining
"W. Europe Standard Time" with odd offsets would move every later invitation of every user in that
worker. The VTIMEZONE blocks are cut out before parsing and each TZID is resolved in this order:
an IANA name (Europe/Berlin), a Windows name (what Outlook and Exchange send), a "globally unique"
/vendor/Area/City name (Thunderbird's older form), the calendar's own VTIMEZONE (read on its own,
uncached), and otherwise UTC with a note on the card. Times without a zone ("floating") are the
reader's local time, as RFC 5545 says.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from dateutil import tz as dateutil_tz
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

MAX_BYTES = 1_000_000  # real invitations are a few KB; a larger part is not read
_TIMEZONE_BLOCK = re.compile(r"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n?", re.S | re.M | re.I)
_TZID_LINE = re.compile(r"^TZID(?:;[^:\r\n]*)?:(.*?)\r?$", re.M | re.I)
PARTSTATS = ("ACCEPTED", "TENTATIVE", "DECLINED", "NEEDS-ACTION", "DELEGATED")


class InvalidCalendar(Exception):
    """The part is not a calendar we can read; the text says why (no content)."""


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""
    partstat: str = "NEEDS-ACTION"
    role: str = ""


@dataclass
class ParsedEvent:
    method: str
    uid: str
    sequence: int = 0
    summary: str = ""
    location: str = ""
    organizer_email: str = ""
    organizer_name: str = ""
    attendees: list[Attendee] = field(default_factory=list)
    starts_at: datetime | None = None  # aware; for an all-day event midnight UTC of the first day
    ends_at: datetime | None = None  # exclusive, like DTEND
    all_day: bool = False
    time_zone: str = ""  # the zone the times were given in, as resolved ("" = UTC or floating)
    zone_note: str = ""  # set when the sender's zone could not be resolved
    recurrence: str = ""  # the RRULE as sent, e.g. "FREQ=WEEKLY;BYDAY=MO"
    recurrence_id: datetime | None = None  # set when the part is about one occurrence of a series
    cancelled: bool = False  # STATUS:CANCELLED or METHOD:CANCEL


def parse(data: bytes, local_zone: tzinfo, method_hint: str = "") -> ParsedEvent:
    """The first event of the calendar (the series' master if there are overrides)."""
    if len(data) > MAX_BYTES:
        raise InvalidCalendar(f"the calendar part is larger than {MAX_BYTES // 1000} KB")
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    own_zones = _own_zones(text)
    try:
        with warnings.catch_warnings():  # icalendar warns of its guesses (vendor TZIDs); we resolve zones ourselves
            warnings.simplefilter("ignore")
            calendar = icalendar.Calendar.from_ical(_TIMEZONE_BLOCK.sub("", text))
    except Exception as exc:  # noqa: BLE001 - any parser failure is "not readable", never a crash
        raise InvalidCalendar(f"the calendar part cannot be read ({type(exc).__name__})") from None
    events = [c for c in calendar.walk("VEVENT")]
    if not events:
        raise InvalidCalendar(gettext_noop("the calendar part holds no event"))
    event = next((e for e in events if "RECURRENCE-ID" not in e), events[0])
    method = str(calendar.get("METHOD") or method_hint or "PUBLISH").upper()[:20]
    uid = str(event.get("UID") or "").strip()
    if not uid:
        raise InvalidCalendar(gettext_noop("the event has no UID"))
    parsed = ParsedEvent(method=method, uid=uid[:1000])
    parsed.sequence = _int(event.get("SEQUENCE"))
    parsed.summary = _text(event.get("SUMMARY"))[:500]
    parsed.location = _text(event.get("LOCATION"))[:500]
    organizer = event.get("ORGANIZER")
    if organizer is not None:
        parsed.organizer_email = _address(organizer)
        parsed.organizer_name = _param(organizer, "CN")
    parsed.attendees = [_attendee(a) for a in _as_list(event.get("ATTENDEE"))][:200]
    _times(parsed, event, own_zones, local_zone)
    rrule = event.get("RRULE")
    if rrule is not None:
        parsed.recurrence = _rrule_text(rrule)
    occurrence = event.get("RECURRENCE-ID")
    if occurrence is not None:
        value = occurrence.dt
        if isinstance(value, datetime):
            parsed.recurrence_id = _aware(parsed, occurrence, own_zones, local_zone)
        elif isinstance(value, date):
            parsed.recurrence_id = datetime(value.year, value.month, value.day, tzinfo=UTC)
    parsed.cancelled = method == "CANCEL" or str(event.get("STATUS") or "").upper() == "CANCELLED"
    return parsed


def _times(parsed: ParsedEvent, event, own_zones: dict[str, str], local_zone: tzinfo) -> None:
    start = event.get("DTSTART")
    if start is None:
        return
    value = start.dt
    if isinstance(value, date) and not isinstance(value, datetime):
        parsed.all_day = True
        parsed.starts_at = datetime(value.year, value.month, value.day, tzinfo=UTC)
        end = event.get("DTEND")
        if end is not None and isinstance(end.dt, date) and not isinstance(end.dt, datetime) and end.dt > value:
            parsed.ends_at = datetime(end.dt.year, end.dt.month, end.dt.day, tzinfo=UTC)
        else:
            parsed.ends_at = parsed.starts_at + _duration(event, timedelta(days=1))
        return
    parsed.starts_at = _aware(parsed, start, own_zones, local_zone)
    end = event.get("DTEND")
    if end is not None and isinstance(end.dt, datetime):
        parsed.ends_at = _aware(parsed, end, own_zones, local_zone)
    else:
        parsed.ends_at = parsed.starts_at + _duration(event, timedelta(0))
    if parsed.ends_at < parsed.starts_at:
        parsed.ends_at = parsed.starts_at


def _aware(parsed: ParsedEvent, prop, own_zones: dict[str, str], local_zone: tzinfo) -> datetime:
    value: datetime = prop.dt
    tzid = _param(prop, "TZID")
    if tzid:
        zone, name = resolve_zone(tzid, own_zones)
        if zone is None:
            # Stored in English; the card translates it when it shows it.
            parsed.zone_note = gettext_noop("The sender's time zone is unknown; times are shown as UTC.")
            zone, name = UTC, ""
        parsed.time_zone = parsed.time_zone or name
        return value.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC)
    if value.tzinfo is not None:  # "Z": UTC
        return value.astimezone(UTC)
    return value.replace(tzinfo=local_zone).astimezone(UTC)  # floating: the reader's local time


def resolve_zone(tzid: str, own_zones: dict[str, str]) -> tuple[tzinfo | None, str]:
    """(zone, its name) for a TZID, see the module docstring for the order; (None, "") if none fits."""
    cleaned = tzid.strip().strip('"').strip("/")
    candidates = [cleaned, WINDOWS_TO_OLSON.get(cleaned, "")]
    parts = cleaned.split("/")
    candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
    for name in filter(None, candidates):
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    block = own_zones.get(tzid.strip()) or own_zones.get(cleaned)
    if block:
        try:
            return dateutil_tz.tzical(io.StringIO(block)).get(), cleaned
        except Exception:  # noqa: BLE001 - a VTIMEZONE dateutil cannot read: no zone
            return None, ""
    return None, ""


def _own_zones(text: str) -> dict[str, str]:
    zones = {}
    for block in _TIMEZONE_BLOCK.findall(text)[:20]:
        match = _TZID_LINE.search(block)
        if match:
            zones[match.group(1).strip()] = block
    return zones


def _duration(event, default: timedelta) -> timedelta:
    duration = event.get("DURATION")
    value = getattr(duration, "dt", None)
    return value if isinstance(value, timedelta) and value >= timedelta(0) else default


def _attendee(prop) -> Attendee:
    partstat = _param(prop, "PARTSTAT").upper() or "NEEDS-ACTION"
    return Attendee(
        email=_address(prop),
        name=_param(prop, "CN")[:200],
        partstat=partstat if partstat in PARTSTATS else "NEEDS-ACTION",
        role=_param(prop, "ROLE").upper()[:30],
    )


def _address(prop) -> str:
    value = str(prop).strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value.strip().lower()[:320]


def _param(prop, name: str) -> str:
    params = getattr(prop, "params", None) or {}
    value = params.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value).strip()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value) -> str:
    return str(value).strip() if value is not None else ""


def _int(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _rrule_text(rrule) -> str:
    try:
        return rrule.to_ical().decode("ascii", "replace")[:300]
    except Exception:  # noqa: BLE001
        return ""


_FREQUENCIES = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}
_DAYS = {"MO": gettext_lazy("Monday"), "TU": gettext_lazy("Tuesday"), "WE": gettext_lazy("Wednesday"),
         "TH": gettext_lazy("Thursday"), "FR": gettext_lazy("Friday"), "SA": gettext_lazy("Saturday"),
         "SU": gettext_lazy("Sunday")}  # fmt: skip


def _every(unit: str, interval: int) -> str:
    """ "every week", "every 2 weeks": whole phrases, as the unit's gender differs in German."""
    if unit == "day":
        return gettext("every day") if interval == 1 else ngettext("every %(n)s day", "every %(n)s days", interval)
    if unit == "week":
        return gettext("every week") if interval == 1 else ngettext("every %(n)s week", "every %(n)s weeks", interval)
    if unit == "month":
        return (
            gettext("every month") if interval == 1 else ngettext("every %(n)s month", "every %(n)s months", interval)
        )
    return gettext("every year") if interval == 1 else ngettext("every %(n)s year", "every %(n)s years", interval)


def describe_recurrence(rrule: str) -> str:
    """ "every week on Monday, 10 times" for the card; the RRULE itself for what it does not know."""
    parts = dict(p.split("=", 1) for p in rrule.split(";") if "=" in p)
    unit = _FREQUENCIES.get(parts.get("FREQ", "").upper())
    if unit is None:
        return rrule
    interval = _int(parts.get("INTERVAL")) or 1
    text = _every(unit, interval) % {"n": interval}
    days = [str(_DAYS.get(d[-2:].upper(), d)) for d in parts.get("BYDAY", "").split(",") if d]
    if days:
        text = gettext("%(every)s on %(days)s") % {"every": text, "days": ", ".join(days)}
    if parts.get("COUNT"):
        count = _int(parts["COUNT"])
        text = ngettext("%(every)s, %(count)s time", "%(every)s, %(count)s times", count) % {
            "every": text,
            "count": count,
        }
    elif parts.get("UNTIL"):
        until = parts["UNTIL"][:8]
        text = gettext("%(every)s, until %(date)s") % {"every": text, "date": f"{until[:4]}-{until[4:6]}-{until[6:8]}"}
    return text
