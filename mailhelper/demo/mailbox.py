"""A realistic sample mailbox for `make demo`, generated from a seed (no real person's mail ships with us).

What a newcomer should see working in the first minute is what a real inbox holds: invoices with due
dates, meeting requests with a calendar part, threads the user answered (their replies in Sent),
newsletters with List-Unsubscribe, machine notifications, a little spam, mail in German, English,
French and Italian, and an attachment or two. Dates are relative to ``now`` so the demo always looks
fresh: the newest mail is from the last hours, the oldest about two months old, and only recent mail is
unread, as in a mailbox someone keeps up with.

Plain Python, no Django: the messages are bytes for Dovecot's Maildir (mailhelper/local_dovecot.py).
The same seed and ``now`` give the same mailbox, so a test can count what it holds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

DEMO_ADDRESS = "demo@mailhelper.test"
DEMO_NAME = "Dana Demo"
DOMAIN = "mailhelper.test"


@dataclass(frozen=True)
class SampleMessage:
    """One message and where it goes: folder, Maildir flags (S seen, R answered, F flagged), date."""

    kind: str  # invoice, invitation, thread, newsletter, notification, personal, spam
    language: str
    folder: str
    raw: bytes
    date: datetime
    flags: str = ""


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    language: str


PEOPLE = [
    Person("Jonas Weber", "jonas.weber@kanzlei-weber.example", "de"),
    Person("Lena Hoffmann", "lena.hoffmann@stadtwerke.example", "de"),
    Person("Priya Raman", "priya@northwind.example", "en"),
    Person("Tom Fletcher", "tom.fletcher@acme-build.example", "en"),
    Person("Camille Laurent", "camille.laurent@atelier-lumiere.example", "fr"),
    Person("Marco Bianchi", "marco.bianchi@studio-bianchi.example", "it"),
    Person("Sofia Rossi", "sofia.rossi@viaggi-rossi.example", "it"),
    Person("Hannah Becker", "hannah.becker@example.org", "de"),
]

# (subject, body) per language for a person writing to the user; {name} is the user's first name.
PERSONAL = {
    "en": [
        ("Quick question about the Q3 report", "could you send me the final figures for the Q3 report by Friday?"),
        ("Urgent: contract needs your signature today", "the contract has to be signed today, the client is waiting."),
        ("Lunch next week?", "are you free for lunch next Tuesday or Wednesday? My treat."),
        ("Feedback on the proposal", "I read the proposal, a few comments are below. Overall it looks good."),
        ("Can you review my pull request?", "when you have a moment, please review the change to the billing module."),
    ],
    "de": [
        ("Kurze Frage zum Angebot", "könnten Sie mir bis Freitag sagen, ob das Angebot so passt?"),
        (
            "Dringend: Unterlagen für den Notartermin",
            "bitte schicken Sie mir die Unterlagen bis morgen, der Termin steht.",
        ),
        ("Treffen nächste Woche", "hätten Sie nächste Woche Zeit für ein kurzes Gespräch? Dienstag wäre gut."),
        ("Rückmeldung zum Entwurf", "ich habe den Entwurf gelesen, meine Anmerkungen stehen unten."),
        ("Zählerstand bitte melden", "bitte melden Sie uns Ihren Zählerstand bis zum Monatsende."),
    ],
    "fr": [
        ("Question rapide sur le devis", "pourriez-vous me confirmer le devis avant vendredi ?"),
        ("Urgent : validation des maquettes", "il nous faut votre validation des maquettes dès que possible."),
        ("Déjeuner la semaine prochaine ?", "seriez-vous libre pour déjeuner mardi prochain ?"),
    ],
    "it": [
        ("Domanda veloce sul preventivo", "mi puoi confermare il preventivo entro venerdì?"),
        ("Urgente: conferma della prenotazione", "serve la tua conferma della prenotazione al più presto."),
        ("Pranzo la prossima settimana?", "sei libero per pranzo martedì prossimo?"),
    ],
}
GREETING = {"en": "Hi {name},", "de": "Hallo {name},", "fr": "Bonjour {name},", "it": "Ciao {name},"}
CLOSING = {"en": "Best regards,", "de": "Viele Grüße", "fr": "Bien cordialement,", "it": "Un saluto,"}
REPLY_LINES = {
    "en": ["Thanks, that works for me.", "Sounds good, I will send it tomorrow.", "Let me check and get back to you."],
    "de": ["Danke, das passt.", "Gut, ich schicke es morgen.", "Ich prüfe das und melde mich."],
    "fr": ["Merci, cela me convient.", "Parfait, je l'envoie demain.", "Je vérifie et je reviens vers vous."],
    "it": ["Grazie, va bene.", "Perfetto, lo mando domani.", "Controllo e ti faccio sapere."],
}
REPLY_PREFIX = {"en": "Re: ", "de": "AW: ", "fr": "RE : ", "it": "R: "}

VENDORS = [
    ("Stadtwerke Musterstadt", "rechnung@stadtwerke.example", "de", "Ihre Rechnung {number}", "Rechnung"),
    ("Northwind Hosting", "billing@northwind.example", "en", "Invoice {number} is due", "Invoice"),
    ("Atelier Lumière", "factures@atelier-lumiere.example", "fr", "Votre facture {number}", "Facture"),
    ("Telecom Italia Demo", "fatture@telecom-demo.example", "it", "La tua fattura {number}", "Fattura"),
]
INVOICE_BODY = {
    "de": "anbei Ihre Rechnung {number} über {amount} EUR. Bitte überweisen Sie den Betrag bis zum {due}.",
    "en": "please find attached invoice {number} for {amount} EUR. Payment is due by {due}.",
    "fr": "veuillez trouver ci-joint la facture {number} de {amount} EUR, à régler avant le {due}.",
    "it": "in allegato la fattura {number} di {amount} EUR da pagare entro il {due}.",
}

NEWSLETTERS = [
    ("The Weekly Byte", "news@weeklybyte.example", "en", "The Weekly Byte #{n}: what shipped this week"),
    ("Gartenfreunde", "newsletter@gartenfreunde.example", "de", "Gartenfreunde Newsletter {n}: Tipps für den Winter"),
    ("Le Petit Gourmet", "lettre@petit-gourmet.example", "fr", "Le Petit Gourmet n°{n} : recettes de saison"),
    ("Travel Deals", "deals@travel-deals.example", "en", "Travel Deals {n}: 30% off city breaks"),
    ("Libreria Aperta", "newsletter@libreria-aperta.example", "it", "Libreria Aperta {n}: le novità del mese"),
]
NEWSLETTER_INTRO = {
    "en": "Here is what we picked for you this week.",
    "de": "Das haben wir diese Woche für Sie ausgewählt.",
    "fr": "Voici notre sélection de la semaine.",
    "it": "Ecco la nostra selezione della settimana.",
}
NEWSLETTER_TOPICS = {
    "en": ["Five tools we liked", "An interview with a maintainer", "Events near you", "Our best offers"],
    "de": ["Rosen richtig schneiden", "Was jetzt gepflanzt wird", "Termine in Ihrer Nähe", "Leserfragen"],
    "fr": ["Une soupe d'hiver", "Le fromage du mois", "Nos adresses préférées", "Questions des lecteurs"],
    "it": ["I libri del mese", "Intervista all'autrice", "Eventi in libreria", "Le vostre recensioni"],
}
NOTIFICATIONS = [
    ("GitHub", "notifications@github.example", "en", "[acme/billing] CI failed on main ({n})",
     "Run {n} failed after 4 min: 3 tests failed in tests/test_invoices.py. View the run for details."),
    ("Parcel Service", "noreply@parcel.example", "en", "Your parcel {n} is out for delivery",
     "Your parcel {n} will arrive today between 10:00 and 14:00. No signature needed."),
    ("Bank Demo", "no-reply@bank-demo.example", "de", "Neue Anmeldung in Ihrem Online-Banking ({n})",
     "Es gab eine neue Anmeldung in Ihrem Online-Banking von einem Firefox-Browser. Waren Sie das nicht, "
     "sperren Sie bitte Ihren Zugang."),
    ("Calendar", "calendar-noreply@calendar.example", "en", "Reminder: team sync today at 10:00 ({n})",
     "Team sync starts at 10:00 in room 2. Agenda: status, blockers, next steps."),
]  # fmt: skip
AUTOMATED = {
    "en": "This is an automated message, please do not reply.",
    "de": "Dies ist eine automatisch erzeugte Nachricht, bitte antworten Sie nicht darauf.",
}
SPAM = [
    ("You have WON a prize!!!", "winner@lottery-scam.example"),
    ("Cheap watches, limited offer", "offers@cheap-watches.example"),
    ("Your account will be closed, verify now", "security@verify-account.example"),
]
MEETINGS = [
    ("Project kick-off", "Conference room 2 / video call", "en"),
    ("Quartalsplanung", "Besprechungsraum 3", "de"),
    ("Revue des maquettes", "Visio", "fr"),
    ("Riunione di progetto", "Sala riunioni A", "it"),
]


class _Builder:
    def __init__(self, now: datetime, seed: int) -> None:
        self.now = now
        self.seed = seed
        self.rnd = random.Random(seed)  # noqa: S311 (sample data, not a secret)
        self.counter = 0

    def ago(self, max_days: float, min_days: float = 0.0) -> datetime:
        seconds = self.rnd.uniform(min_days * 86400, max_days * 86400)
        return (self.now - timedelta(seconds=seconds)).replace(microsecond=0)

    def message(
        self,
        *,
        sender: tuple[str, str],
        to: tuple[str, str] = (DEMO_NAME, DEMO_ADDRESS),
        subject: str,
        body: str,
        date: datetime,
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
    ) -> tuple[EmailMessage, str]:
        self.counter += 1
        msg = EmailMessage()
        msg["From"] = f"{sender[0]} <{sender[1]}>"
        msg["To"] = f"{to[0]} <{to[1]}>"
        msg["Subject"] = subject
        msg["Date"] = format_datetime(date)
        # Stable ids (make_msgid adds the time and pid): the same seed gives the same mailbox.
        message_id = message_id or f"<demo.{self.seed}.{self.counter}@{sender[1].split('@')[1]}>"
        msg["Message-ID"] = message_id
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(body)
        return msg, message_id

    def flags_for(self, date: datetime, *, unread_days: float = 2.0, answered: bool = False) -> str:
        """Recent mail unread, older mail read; a few flagged."""
        flags = "" if self.now - date < timedelta(days=unread_days) else "S"
        if answered:
            flags += "R"
        if self.rnd.random() < 0.05:
            flags += "F"
        return flags


def generate(now: datetime, seed: int = 2026) -> list[SampleMessage]:
    """About 300 messages, oldest first; INBOX, Sent and Junk."""
    builder = _Builder(now, seed)
    messages = [
        *_threads(builder),
        *_personal(builder),
        *_invoices(builder),
        *_invitations(builder),
        *_newsletters(builder),
        *_notifications(builder),
        *_spam(builder),
    ]
    return sorted(messages, key=lambda m: m.date)


def _raw(message: EmailMessage) -> bytes:
    """The message's bytes with boundaries made from its Message-ID (the email package picks random ones)."""
    stem = re.sub(r"[^A-Za-z0-9]+", ".", message["Message-ID"]).strip(".")
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{stem}.{number}")
    return bytes(message)


def _letter(person: Person, text: str, first_name: str = "Dana") -> str:
    lang = person.language
    return f"{GREETING[lang].format(name=first_name)}\n\n{text}\n\n{CLOSING[lang]}\n{person.name}\n"


def _threads(b: _Builder) -> Iterator[SampleMessage]:
    """Conversations: a person writes, the user answers (Sent), sometimes back and forth."""
    for round_ in range(4):
        for person in PEOPLE:
            subject, text = b.rnd.choice(PERSONAL[person.language])
            start = b.ago(55, 3 + round_ * 10)
            msg, first_id = b.message(
                sender=(person.name, person.address), subject=subject, body=_letter(person, text), date=start
            )
            yield SampleMessage("thread", person.language, "INBOX", _raw(msg), start, b.flags_for(start, answered=True))
            references = [first_id]
            when = start
            for turn in range(b.rnd.randint(1, 4)):
                when = when + timedelta(hours=b.rnd.uniform(1, 30))
                if when > b.now:
                    break
                prefix = REPLY_PREFIX[person.language]
                mine = turn % 2 == 0
                line = b.rnd.choice(REPLY_LINES[person.language])
                sender = (DEMO_NAME, DEMO_ADDRESS) if mine else (person.name, person.address)
                to = (person.name, person.address) if mine else (DEMO_NAME, DEMO_ADDRESS)
                body = f"{line}\n\n{DEMO_NAME}\n" if mine else _letter(person, line)
                quoted = "\n".join(f"> {row}" for row in _letter(person, text).splitlines())
                reply, reply_id = b.message(
                    sender=sender,
                    to=to,
                    subject=prefix + subject,
                    body=f"{body}\n{quoted}\n",
                    date=when,
                    headers={"In-Reply-To": references[-1], "References": " ".join(references)},
                )
                references.append(reply_id)
                folder = "Sent" if mine else "INBOX"
                flags = "S" if mine else b.flags_for(when)
                yield SampleMessage("thread", person.language, folder, _raw(reply), when, flags)


def _personal(b: _Builder) -> Iterator[SampleMessage]:
    """Single messages from people, some waiting for an answer."""
    for _ in range(36):
        person = b.rnd.choice(PEOPLE)
        subject, text = b.rnd.choice(PERSONAL[person.language])
        date = b.ago(40)
        msg, _ = b.message(sender=(person.name, person.address), subject=subject, body=_letter(person, text), date=date)
        yield SampleMessage("personal", person.language, "INBOX", _raw(msg), date, b.flags_for(date, unread_days=4))


def _invoices(b: _Builder) -> Iterator[SampleMessage]:
    """Invoices with an amount and a due date; every other one carries its PDF."""
    for n in range(20):
        vendor, address, lang, subject, label = VENDORS[n % len(VENDORS)]
        date = b.ago(50)
        number = f"{date:%Y}-{1000 + n * 7}"
        amount = f"{b.rnd.randint(19, 480)},{b.rnd.randint(0, 99):02d}"
        due = (date + timedelta(days=14)).strftime("%d.%m.%Y")
        body = _letter(Person(vendor, address, lang), INVOICE_BODY[lang].format(number=number, amount=amount, due=due))
        msg, _ = b.message(sender=(vendor, address), subject=subject.format(number=number), body=body, date=date)
        if n % 2 == 0:
            msg.add_attachment(
                _pdf(f"{label} {number}: {amount} EUR"),
                maintype="application",
                subtype="pdf",
                filename=f"{label}-{number}.pdf",
            )
        yield SampleMessage("invoice", lang, "INBOX", _raw(msg), date, b.flags_for(date, unread_days=6))


def _invitations(b: _Builder) -> Iterator[SampleMessage]:
    """Meeting requests with a text/calendar part (iMIP REQUEST), in the coming two weeks."""
    for n in range(12):
        title, location, lang = MEETINGS[n % len(MEETINGS)]
        organiser = next(p for p in PEOPLE if p.language == lang)
        date = b.ago(10)
        start = (b.now + timedelta(days=b.rnd.randint(1, 14))).replace(
            hour=b.rnd.choice([9, 10, 14, 16]), minute=0, second=0, microsecond=0
        )
        text = {
            "en": f"you are invited to '{title}' on {start:%A, %d %B at %H:%M}. Please accept or decline.",
            "de": f"ich lade Sie zu „{title}“ am {start:%d.%m.%Y um %H:%M} ein. Bitte sagen Sie zu oder ab.",
            "fr": f"vous êtes invité(e) à « {title} » le {start:%d/%m/%Y à %H:%M}. Merci de répondre.",
            "it": f"sei invitato a «{title}» il {start:%d/%m/%Y alle %H:%M}. Per favore conferma.",
        }[lang]
        msg, _ = b.message(
            sender=(organiser.name, organiser.address),
            subject={"en": "Invitation: ", "de": "Einladung: ", "fr": "Invitation : ", "it": "Invito: "}[lang] + title,
            body=_letter(organiser, text),
            date=date,
        )
        msg.add_alternative(
            _ics(f"demo-{n}-{b.counter}@{DOMAIN}", title, location, start, organiser),
            subtype="calendar",
            params={"method": "REQUEST"},
        )
        yield SampleMessage("invitation", lang, "INBOX", _raw(msg), date, b.flags_for(date, unread_days=5))


def _newsletters(b: _Builder) -> Iterator[SampleMessage]:
    for name, address, lang, subject in NEWSLETTERS:
        list_id = address.split("@")[1]
        for n in range(14):
            date = b.ago(60)
            body = (
                f"{NEWSLETTER_INTRO[lang]}\n\n"
                + "\n".join(f"* {b.rnd.choice(NEWSLETTER_TOPICS[lang])}" for _ in range(4))
                + f"\n\nUnsubscribe: https://{list_id}/unsubscribe?u=demo\n"
            )
            headers = {
                "List-Id": f"{name} <news.{list_id}>",
                "List-Unsubscribe": f"<https://{list_id}/unsubscribe?u=demo>, <mailto:unsubscribe@{list_id}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Precedence": "bulk",
            }
            msg, _ = b.message(
                sender=(name, address), subject=subject.format(n=100 + n), body=body, date=date, headers=headers
            )
            flags = "S" if b.rnd.random() < 0.4 and b.now - date > timedelta(days=2) else ""
            yield SampleMessage("newsletter", lang, "INBOX", _raw(msg), date, flags)


def _notifications(b: _Builder) -> Iterator[SampleMessage]:
    for n in range(64):
        name, address, lang, subject, text = NOTIFICATIONS[n % len(NOTIFICATIONS)]
        date = b.ago(45)
        body = f"{text.format(n=4200 + n)}\n\n{AUTOMATED[lang]}\n"
        msg, _ = b.message(
            sender=(name, address),
            subject=subject.format(n=4200 + n),
            body=body,
            date=date,
            headers={"Auto-Submitted": "auto-generated"},
        )
        yield SampleMessage("notification", lang, "INBOX", _raw(msg), date, b.flags_for(date, unread_days=1))


def _spam(b: _Builder) -> Iterator[SampleMessage]:
    for n in range(6):
        subject, address = SPAM[n % len(SPAM)]
        date = b.ago(30)
        body = "Click here to claim: http://prize.example/claim\nAct now, offer ends today!!!\n"
        msg, _ = b.message(sender=("Prize Team", address), subject=subject, body=body, date=date)
        yield SampleMessage("spam", "en", "Junk" if n % 2 else "INBOX", _raw(msg), date, "")


def _ics(uid: str, title: str, location: str, start: datetime, organiser: Person) -> str:
    """An iMIP REQUEST as calendar clients send it (RFC 5546): one VEVENT, the user as attendee."""
    stamp = start.strftime("%Y%m%dT%H%M%S")
    end = (start + timedelta(hours=1)).strftime("%Y%m%dT%H%M%S")
    zone = start.tzinfo.tzname(start) if start.tzinfo else "UTC"
    dtstart = f"DTSTART:{stamp}Z" if zone == "UTC" else f"DTSTART:{stamp}"
    dtend = f"DTEND:{end}Z" if zone == "UTC" else f"DTEND:{end}"
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Mailhelper demo//EN",
            "METHOD:REQUEST",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{stamp}Z",
            dtstart,
            dtend,
            f"SUMMARY:{title}",
            f"LOCATION:{location}",
            f"ORGANIZER;CN={organiser.name}:mailto:{organiser.address}",
            f"ATTENDEE;CN={DEMO_NAME};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{DEMO_ADDRESS}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


def _pdf(text: str) -> bytes:
    """A one-page PDF showing one line of text: small, valid, opens in any viewer."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1", "replace")
    stream = b"BT /F1 14 Tf 72 720 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
