"""Raw messages for the mail tests (replies, drafts, sending): built with the stdlib, like a client would."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

ME = "me@example.test"


def raw_message(
    *,
    subject: str = "Quarterly report",
    sender: str = '"Schmidt, Anna" <anna@example.test>',
    to: str = f"Me Myself <{ME}>, Bob Builder <bob@example.test>",
    cc: str | None = "carol@example.test, ME@EXAMPLE.TEST, bob@example.test",
    reply_to: str | None = None,
    body: str = "Hello,\n\nplease send the report by Friday.\n\nAnna",
    message_id: str = "<orig-1@example.test>",
    references: str | None = "<root@example.test> <middle@example.test>",
    attachment: bytes | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    if references:
        msg["References"] = references
        msg["In-Reply-To"] = references.split()[-1]
    msg["Date"] = format_datetime(datetime(2026, 3, 5, 9, 30, tzinfo=UTC))
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="report.pdf")
    return bytes(msg)
