"""Export of everything a user stored here, as one zip (the "download my data" right).

A service: no request, no Celery. The command and the settings page both call it. The zip holds the
decrypted raw source of each stored message (so it opens in any mail client and can be re-imported
into an IMAP server) and JSON for what only exists here: tags, rules, settings (reply style and
signatures too), drafts (the files attached to them under drafts/) and the security log. Secrets
(IMAP/SMTP passwords, the LLM API key) are left out on purpose: the archive may end up on a laptop
or in a backup.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from typing import BinaryIO

from django.utils import timezone

from accounts import audit, keyring
from accounts.models import User
from analysis.models import ProviderSettings, TrustedSender
from core import exports
from events.models import Event
from mail.models import AccountSignature, Draft, DraftAttachment, MailAccount, Message, ReplySettings
from newsletters.models import Unsubscription
from rules.models import Rule
from tags.models import Tag, TagAssignment, TagSettings

FORMAT = "mailhelper-export/1"
_UNSAFE = re.compile(r"[^\w@+=,. -]+")


class ExportLocked(Exception):
    """A strict-mode user is logged out: their data key is not available, so nothing can be decrypted."""


def sanitise(name: str, fallback: str = "unnamed") -> str:
    """One safe path component: no separators, no control characters, no '..', bounded length.

    Account and folder names are user- or server-chosen; unsanitised they could escape the archive's
    directory on extraction (zip slip) or be invalid on Windows.
    """
    cleaned = _UNSAFE.sub("_", name).strip(" .")
    return cleaned[:100] or fallback


def _dumps(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def _settings_data(user: User, accounts: list[MailAccount]) -> dict:
    provider = ProviderSettings.objects.filter(owner=user).first()
    tag_settings = TagSettings.objects.filter(owner=user).first()
    return {
        "user": {"username": user.username, "email": user.email, "strict_mode": user.strict_mode},
        # Passwords are deliberately absent: they are secrets of another service, not the user's data.
        "accounts": [
            {
                "id": str(a.pk),
                "name": a.name,
                "email_address": a.email_address,
                "imap_host": a.imap_host,
                "imap_port": a.imap_port,
                "imap_security": a.imap_security,
                "imap_username": a.imap_username,
                "smtp_host": a.smtp_host,
                "smtp_port": a.smtp_port,
                "smtp_security": a.smtp_security,
                "smtp_username": a.smtp_username,
                "sync_interval_minutes": a.sync_interval_minutes,
                "enabled": a.enabled,
                "folders": [
                    {"name": f.name, "special_use": f.special_use, "sync_enabled": f.sync_enabled}
                    for f in a.folders.all()
                ],
            }
            for a in accounts
        ],
        "trusted_senders": [
            {"pattern": t.pattern, "note": t.note, "account": t.account.name if t.account else None}
            for t in TrustedSender.objects.filter(owner=user).select_related("account")
        ],
        # The API key is left out like the passwords.
        "provider": (
            {
                "enabled": provider.enabled,
                "kind": provider.kind,
                "base_url": provider.base_url,
                "model": provider.model,
                "timeout_seconds": provider.timeout_seconds,
                "use_for_replies": provider.use_for_replies,
            }
            if provider
            else None
        ),
        "tag_settings": (
            {
                "auto_apply": tag_settings.auto_apply,
                "auto_apply_threshold": tag_settings.auto_apply_threshold,
                "server_keywords": tag_settings.server_keywords,
            }
            if tag_settings
            else None
        ),
        "replies": _reply_settings_data(user),
    }


def _reply_settings_data(user: User) -> dict:
    row = ReplySettings.objects.filter(owner=user).first()
    return {
        "greeting": row.greeting if row else "",
        "closing": row.closing if row else "",
        "address_form": row.address_form if row else ReplySettings.AddressForm.FORMAL,
        "instructions": row.instructions if row else "",
        "signatures": {
            s.account.name: s.text for s in AccountSignature.objects.filter(owner=user).select_related("account")
        },
    }


def _drafts_data(user: User, paths: dict[str, str], zf: zipfile.ZipFile) -> tuple[list[dict], int]:
    """The drafts as JSON, and their attached files written to drafts/<draft id>/ (returns how many)."""
    files = _draft_files(user, zf)
    drafts = [
        {
            "kind": d.kind,
            "status": d.status,
            "account": d.account.name,
            "original": paths.get(str(d.original_id), str(d.original_id)) if d.original_id else None,
            "to": d.to,
            "cc": d.cc,
            "bcc": d.bcc or "",
            "subject": d.subject,
            "body": d.body,
            "created_at": d.created_at,
            "sent_at": d.sent_at,
            "attachments": files.get(d.pk, []),
        }
        for d in Draft.objects.filter(owner=user).select_related("account").defer("sent_raw").order_by("created_at")
    ]
    return drafts, sum(len(f) for f in files.values())


def _draft_files(user: User, zf: zipfile.ZipFile) -> dict[object, list[dict]]:
    """Each draft's attachments, read one at a time (a draft may hold MAILHELPER_ATTACHMENTS_MAX_MB) and
    stored under their own names; two files of one draft with the same name keep both (the second
    gets its row id)."""
    files: dict[object, list[dict]] = {}
    used: set[str] = set()
    uploads = DraftAttachment.objects.filter(owner=user).order_by("draft_id", "created_at", "id")
    for upload in uploads.iterator(chunk_size=1):
        folder = f"drafts/{upload.draft_id}"
        path = f"{folder}/{sanitise(upload.filename, 'attachment')}"
        if path in used:
            path = f"{folder}/{upload.pk}-{sanitise(upload.filename, 'attachment')}"
        used.add(path)
        zf.writestr(path, bytes(upload.data or b""))
        files.setdefault(upload.draft_id, []).append(
            {"filename": upload.filename, "content_type": upload.content_type, "size": upload.size, "path": path}
        )
    return files


def _calendar_data(user: User, paths: dict[str, str]) -> list[dict]:
    """The invitations as read, and the user's answers (the invitations themselves are in the .eml files)."""
    return [
        {
            "message": paths.get(str(e.message_id), str(e.message_id)),
            "method": e.method,
            "summary": e.summary,
            "location": e.location,
            "organizer": e.organizer_email,
            "starts_at": e.starts_at,
            "ends_at": e.ends_at,
            "all_day": e.all_day,
            "answer": e.answer,
            "answered_at": e.answered_at,
            "cancelled": e.cancelled,
        }
        for e in Event.objects.filter(owner=user).order_by("starts_at", "created_at")
    ]


def export_user_data(user: User, out: BinaryIO, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the user's zip to `out` and return the counts (also stored in manifest.json).

    Raises ExportLocked for a strict-mode user who is logged out, before anything is written.
    """
    if keyring.is_locked(user.pk):
        raise ExportLocked("strict mode: the user must be logged in for their data to be exported")
    accounts = list(MailAccount.objects.filter(owner=user).order_by("name"))
    messages = (
        Message.objects.filter(owner=user, raw__isnull=False)
        .select_related("account", "folder")
        .defer("text_body", "html_body", "search_ids")
        .order_by("account__name", "folder__name", "uid", "id")
    )
    total = messages.count()
    paths: dict[str, str] = {}
    used: set[str] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for done, message in enumerate(messages.iterator(chunk_size=200), start=1):
            folder_dir = f"{sanitise(message.account.name)}/{sanitise(message.folder.name)}"
            path = f"{folder_dir}/{message.uid if message.uid is not None else message.pk}.eml"
            if path in used:  # same UID under an older UIDVALIDITY: the row id is unique
                path = f"{folder_dir}/{message.pk}.eml"
            used.add(path)
            paths[str(message.pk)] = path
            zf.writestr(path, bytes(message.raw))
            if progress:
                progress(done, total)
        tag_messages: dict[int, list[str]] = {}
        for tag_id, message_id in TagAssignment.objects.filter(owner=user).values_list("tag_id", "message_id"):
            tag_messages.setdefault(tag_id, []).append(str(message_id))
        tags = [
            {
                "name": t.name,
                "color": t.color,
                "description": t.description,
                "created_at": t.created_at,
                "messages": sorted(tag_messages.get(t.pk, [])),
            }
            for t in Tag.objects.filter(owner=user)
        ]
        zf.writestr("tags.json", _dumps({"tags": tags, "message_paths": paths}))
        rules = [
            {
                "name": r.name,
                "order": r.order,
                "enabled": r.enabled,
                "definition": r.definition,
                "created_at": r.created_at,
            }
            for r in Rule.objects.filter(owner=user)
        ]
        zf.writestr("rules.json", _dumps({"rules": rules}))
        settings_data = _settings_data(user, accounts)
        zf.writestr("settings.json", _dumps(settings_data))
        drafts, draft_files = _drafts_data(user, paths, zf)
        zf.writestr("drafts.json", _dumps({"drafts": drafts}))
        security_log = audit.export_rows(user)
        zf.writestr("security-log.json", _dumps({"events": security_log}))
        calendar = _calendar_data(user, paths)
        zf.writestr("calendar.json", _dumps({"events": calendar}))
        unsubscriptions = [
            {"sender": u.sender, "method": u.method, "state": u.state, "detail": u.detail, "at": u.created_at}
            for u in Unsubscription.objects.filter(owner=user).order_by("created_at")
        ]
        zf.writestr("newsletters.json", _dumps({"unsubscriptions": unsubscriptions}))
        for filename, section in exports.sections().items():  # registered by apps not imported here
            content = section(user)
            if content is not None:
                zf.writestr(filename, _dumps(content))
        counts = {
            "accounts": len(accounts),
            "messages": len(paths),
            "tags": len(tags),
            "tag_assignments": sum(len(v) for v in tag_messages.values()),
            "rules": len(rules),
            "trusted_senders": len(settings_data["trusted_senders"]),
            "drafts": len(drafts),
            "draft_attachments": draft_files,
            "security_events": len(security_log),
            "calendar_events": len(calendar),
            "unsubscriptions": len(unsubscriptions),
        }
        manifest = {"format": FORMAT, "username": user.username, "created_at": timezone.now(), "counts": counts}
        zf.writestr("manifest.json", _dumps(manifest))
    return counts
