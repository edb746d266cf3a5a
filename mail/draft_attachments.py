"""Files attached to a message being written: size-limited, stored encrypted, sent with the draft.

The limit is per draft, all files together (MAILHELPER_ATTACHMENTS_MAX_MB): an SMTP server refuses a
message over its size after the user pressed Send, which is later than they should learn it. Uploads
arrive in memory only (settings.FILE_UPLOAD_HANDLERS), so no plaintext copy ever touches the disk.
The declared content type is kept for the MIME part but never trusted when serving: downloads are
application/octet-stream with a sandboxing CSP (mail/views/messages.py).
"""

from __future__ import annotations

import mimetypes
import re

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum

from .models import Draft, DraftAttachment

_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


class AttachmentRefused(ValueError):
    """The file was not attached; the text says why, fit for the user."""


def limit_bytes() -> int:
    return settings.MAILHELPER_ATTACHMENTS_MAX_MB * 1024 * 1024


def _content_type(upload: UploadedFile) -> str:
    declared = (upload.content_type or "").lower().split(";")[0].strip()
    if _TYPE.match(declared) and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(upload.name or "")
    return guessed or "application/octet-stream"


def _filename(name: str) -> str:
    """The name without any path a browser may send, control characters or more than 200 characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:200] or "attachment"


@transaction.atomic
def add(draft: Draft, upload: UploadedFile) -> DraftAttachment:
    """Attach one uploaded file; AttachmentRefused when the draft cannot take it."""
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if not locked.editable:
        raise AttachmentRefused("This message is being sent or was sent; it can no longer be changed.")
    data = upload.read()
    used = DraftAttachment.objects.filter(draft=locked).aggregate(total=Sum("size"))["total"] or 0
    if used + len(data) > limit_bytes():
        raise AttachmentRefused(
            f"{_filename(upload.name)} was not attached: attachments can be "
            f"{settings.MAILHELPER_ATTACHMENTS_MAX_MB} MB in all."
        )
    attachment = DraftAttachment(
        owner_id=locked.owner_id,
        draft=locked,
        content_type=_content_type(upload),
        size=len(data),
        filename=_filename(upload.name),
        data=data,
    )
    attachment.save()
    return attachment


@transaction.atomic
def remove(draft: Draft, attachment_id) -> bool:
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if not locked.editable:
        return False
    deleted, _ = DraftAttachment.objects.filter(draft=locked, pk=attachment_id).delete()
    return bool(deleted)
