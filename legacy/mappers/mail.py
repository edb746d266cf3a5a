"""Mail accounts, folders, messages and their server state, attachments, trusted senders, reply styles."""

from __future__ import annotations

import json
import uuid

from django.db.models import Count
from django.utils import timezone

from accounts.fields import seal_fields
from analysis.models import TrustedSender
from legacy.models import LegacyImportMap
from mail.models import Attachment, Folder, MailAccount, Message, ReplySettings

from ..context import Context, Result
from .base import (
    RECORD,
    ROW,
    WAITING_MESSAGE,
    Mapper,
    canonical,
    clear_none,
    keep_original,
    restore_times,
    unique_name,
)

# --- mail accounts and folders -------------------------------------------------------------------------

_SECURITY = {
    "ssl": "ssl",
    "ssl/tls": "ssl",
    "tls": "ssl",
    "imaps": "ssl",
    "smtps": "ssl",
    "starttls": "starttls",
    "none": "plain",
    "plain": "plain",
    "no": "plain",
}


def security(value: str | None, port: int | None) -> str:
    mapped = _SECURITY.get((value or "").strip().lower())
    if mapped:
        return mapped
    return "ssl" if port in (993, 465) else "starttls"


def _parse_uidvalidity(text: str | None) -> dict[str, int]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | str) and str(v).isdigit()}


#: What a legacy POP3 account has of its own; an IMAP account's values here stay in its LegacyRecord.
POP3_COLUMNS = frozenset(
    {"auth_type", "pop3_port", "encrypted_pop3_server", "encrypted_pop3_username", "encrypted_pop3_password"}
)
POP3_PORT = 995


def is_pop3(row: dict) -> bool:
    """A legacy POP3 account: auth_type says so, or it has a POP3 server and no IMAP server."""
    if (row.get("auth_type") or "").strip().lower() in ("pop3", "pop"):
        return True
    return bool(row.get("encrypted_pop3_server")) and not row.get("encrypted_imap_server")


#: What a legacy OAuth account has of its own (auth_type "oauth"): the provider, the tokens, the expiry.
OAUTH_COLUMNS = frozenset(
    {"auth_type", "oauth_provider", "encrypted_oauth_token", "encrypted_oauth_refresh_token", "oauth_expires_at"}
)
#: The legacy's provider names -> MAILHELPER_OAUTH_PROVIDERS keys; others are kept as they are (not offered).
_OAUTH_PROVIDERS = {
    "google": "google",
    "gmail": "google",
    "microsoft": "microsoft",
    "outlook": "microsoft",
    "office365": "microsoft",
    "office 365": "microsoft",
    "azure": "microsoft",
}


def is_oauth(row: dict) -> bool:
    """A legacy OAuth (IMAP) account: auth_type says so."""
    return (row.get("auth_type") or "").strip().lower() in ("oauth", "oauth2", "xoauth2") and not is_pop3(row)


def oauth_provider(value: str | None) -> str:
    name = (value or "").strip().lower()
    return _OAUTH_PROVIDERS.get(name, name[:20])


def pop3_security(port: int) -> str:
    """The legacy kept no POP3 security setting: POP3S on 995, else STLS (refused clearly if not offered)."""
    return "ssl" if port == POP3_PORT else "starttls"


#: The legacy's per-account fetch and analysis settings; see first_sync_fields.
FIRST_SYNC_COLUMNS = ("fetch_since_date", "fetch_unseen_only", "enable_ai_analysis_on_fetch", "urgency_booster_enabled")


def first_sync_fields(row: dict) -> dict:
    """The legacy's fetch settings as MailAccount fields.

    fetch_unseen_only -> only unread; else fetch_since_date -> mail since that day, with no older
    mail fetched in the background (the legacy never fetched it; the user may switch it on); else
    the whole mailbox, as the legacy fetched it. The legacy's date stays in first_sync_since either
    way. enable_ai_analysis_on_fetch -> analyse_on_fetch, urgency_booster_enabled -> urgency_booster
    (an empty value: on, as a new account). A first sync after the conversion leaves out what was
    imported: only mail the legacy did not hold is fetched, within this window.
    """
    since = row.get("fetch_since_date")
    if row.get("fetch_unseen_only"):
        mode = MailAccount.FirstSync.UNREAD
    elif since is not None:
        mode = MailAccount.FirstSync.SINCE
    else:
        mode = MailAccount.FirstSync.ALL
    return {
        "first_sync": mode,
        "first_sync_since": since,
        "backfill_older": False,
        "analyse_on_fetch": row.get("enable_ai_analysis_on_fetch") is not False,
        "urgency_booster": row.get("urgency_booster_enabled") is not False,
    }


def first_sync_columns(account: MailAccount, unset: list[str]) -> dict:
    """Back from the fields to the legacy columns (the target checksum); `unset`: columns the legacy left empty."""
    columns = {
        "fetch_since_date": canonical(account.first_sync_since),
        "fetch_unseen_only": account.first_sync == MailAccount.FirstSync.UNREAD,
        "enable_ai_analysis_on_fetch": account.analyse_on_fetch,
        "urgency_booster_enabled": account.urgency_booster,
    }
    return {column: None if column in unset else value for column, value in columns.items()}


class MailAccounts(Mapper):
    """Legacy mail accounts, IMAP or POP3.

    A POP3 account's server, port, user name and password (the legacy's pop3_* columns) go into the
    same incoming-server fields an IMAP account uses, with protocol "pop3"; the IMAP port and
    encryption it may also carry are kept in the map entry's note (they mean nothing for it).
    An OAuth account (auth_type "oauth") becomes an OAuth2 account: its provider and token expiry at
    once, its sealed tokens at the owner's first login (legacy/conversion.py).
    """

    table, label = "mail_accounts", "mail.mailaccount"
    fks = {"user_id": ("users", True)}
    mapped = (
        POP3_COLUMNS
        | OAUTH_COLUMNS
        | frozenset(
            {
                "user_id",
                "name",
                "imap_port",
                "smtp_port",
                "imap_encryption",
                "smtp_encryption",
                "enabled",
                "last_fetch_at",
                "created_at",
                "encrypted_imap_server",
                "encrypted_imap_username",
                "encrypted_imap_password",
                "encrypted_smtp_server",
                "encrypted_smtp_username",
                "encrypted_smtp_password",
                "encrypted_signature_text",  # -> the account's signature at conversion (if signature_enabled)
                *FIRST_SYNC_COLUMNS,
            }
        )
    )

    def consumed(self, row: dict) -> frozenset[str]:
        """An account's own columns: a POP3 one's pop3_*, an OAuth one's oauth_*; others stay in its record."""
        pop3_only, oauth_only = POP3_COLUMNS - {"auth_type"}, OAUTH_COLUMNS - {"auth_type"}
        if is_pop3(row):
            return self.mapped - oauth_only
        if is_oauth(row):
            return self.mapped - pop3_only
        return self.mapped - POP3_COLUMNS - oauth_only

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, created = [], []
        names = ctx.cache.setdefault("account_names", {})
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            if owner not in names:
                names[owner] = {
                    n.lower() for n in MailAccount.objects.filter(owner_id=owner).values_list("name", flat=True)
                }
            note: dict = {"legacy_enabled": row.get("enabled")}
            legacy_name = row.get("name") or "Imported account"
            name = unique_name(legacy_name, names[owner], 100)
            if name != row.get("name"):
                keep_original(note, "name", row.get("name"))
            imap_port, smtp_port = row.get("imap_port") or 993, row.get("smtp_port") or 587
            imap_security = security(row.get("imap_encryption"), imap_port)
            protocol = MailAccount.Protocol.IMAP
            if is_pop3(row):
                keep_original(note, "auth_type", row.get("auth_type"))
                keep_original(note, "imap_port", row.get("imap_port"))
                keep_original(note, "imap_encryption", row.get("imap_encryption"))
                protocol, imap_port = MailAccount.Protocol.POP3, row.get("pop3_port") or POP3_PORT
                imap_security = pop3_security(imap_port)
            oauth = {}
            if is_oauth(row):  # the tokens are sealed values, converted at the first login (legacy/conversion.py)
                for column in ("auth_type", "oauth_provider", "oauth_expires_at"):
                    keep_original(note, column, row.get(column))
                oauth = {
                    "auth_method": MailAccount.AuthMethod.OAUTH2,
                    "oauth_provider": oauth_provider(row.get("oauth_provider")),
                    "oauth_expires_at": row.get("oauth_expires_at"),
                }
            account = MailAccount(
                owner_id=owner,
                name=name,
                email_address="",
                protocol=protocol,
                imap_host="",
                imap_port=imap_port,
                imap_security=imap_security,
                imap_username="",
                smtp_host="",
                smtp_port=smtp_port,
                smtp_security=security(row.get("smtp_encryption"), smtp_port),
                enabled=False,
                status=MailAccount.Status.LOCKED,
                status_message=WAITING_MESSAGE,
                last_sync_at=row.get("last_fetch_at"),
                **first_sync_fields(row),
                **oauth,
            )
            unset = [column for column in FIRST_SYNC_COLUMNS if row.get(column) is None]
            if unset:
                note["unset"] = unset
            seal_fields(account, ctx.dek(owner))
            account.save()  # one by one: the post_save signal creates the (disabled) beat row
            if row.get("created_at"):
                account.created_at = row["created_at"]
                created.append(account)
            else:
                keep_original(note, "created_at", None)
            ctx.cache.setdefault("uidvalidity", {})[row["id"]] = _parse_uidvalidity(row.get("folder_uidvalidity"))
            results.append(Result(row["id"], ROW, str(account.pk), note))
        restore_times(MailAccount, created, ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["smtp_port"] = row.get("smtp_port") or 587
        d["smtp_encryption"] = security(row.get("smtp_encryption"), d["smtp_port"])
        if is_pop3(row):  # auth_type, imap_port and imap_encryption as the legacy had them (kept in the note)
            d["pop3_port"] = row.get("pop3_port") or POP3_PORT
            return
        d["imap_port"] = row.get("imap_port") or 993
        d["imap_encryption"] = security(row.get("imap_encryption"), d["imap_port"])

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        for a in MailAccount.objects.filter(pk__in=pks).only(
            "id",
            "owner_id",
            "name",
            "protocol",
            "imap_port",
            "smtp_port",
            "imap_security",
            "smtp_security",
            "enabled",
            "last_sync_at",
            "created_at",
            "first_sync",
            "first_sync_since",
            "analyse_on_fetch",
            "urgency_booster",
        ):
            note = entries[str(a.pk)].note
            row = {
                "user_id": ctx.legacy_id("users", a.owner_id),
                "name": a.name,
                "smtp_port": a.smtp_port,
                "smtp_encryption": a.smtp_security,
                "enabled": note.get("legacy_enabled", a.enabled),
                "last_fetch_at": canonical(a.last_sync_at),
                "created_at": canonical(a.created_at),
                **first_sync_columns(a, note.get("unset", [])),
            }
            if a.is_pop3:  # auth_type, imap_port and imap_encryption come back from the note
                row["pop3_port"] = a.imap_port
            else:
                row["imap_port"], row["imap_encryption"] = a.imap_port, a.imap_security
            out[str(a.pk)] = clear_none(row)
        return out


_SPECIAL = {
    "inbox": "inbox",
    "sent": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "trash": "trash",
    "deleted": "trash",
    "junk": "junk",
    "spam": "junk",
    "archive": "archive",
    "all": "all",
}


def _folders(ctx: Context, account_pk: str) -> dict[str, int]:
    cache = ctx.cache.setdefault("folders", {})
    if account_pk not in cache:
        cache[account_pk] = dict(Folder.objects.filter(account_id=account_pk).values_list("name", "pk"))
    return cache[account_pk]


class EmailFolders(Mapper):
    table, label = "email_folders", "mail.folder"
    fks = {"mail_account_id": ("mail_accounts", True)}
    mapped = frozenset({"mail_account_id", "imap_path", "special_folder_type"})

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "mail_accounts", row.get("mail_account_id"))

    def check(self, row: dict, ctx: Context) -> str | None:
        owner = self.owner_legacy(row, ctx)
        if row.get("user_id") is not None and row["user_id"] != owner:
            return "user_id differs from its account's owner"
        if not (row.get("imap_path") or row.get("name")):
            return "no folder name"
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results = []
        for row in rows:
            account_pk = ctx.row_pk("mail_accounts", row["mail_account_id"])
            path = (row.get("imap_path") or row.get("name"))[:500]
            existing = _folders(ctx, account_pk)
            if path in existing:
                results.append(Result(row["id"], RECORD, why="the same folder twice"))
                continue
            uidvalidity = ctx.cache.get("uidvalidity", {}).get(row["mail_account_id"], {}).get(path)
            folder = Folder.objects.create(
                account_id=account_pk,
                name=path,
                special_use=_SPECIAL.get((row.get("special_folder_type") or "").lower(), ""),
                sync_enabled=True,
                uidvalidity=uidvalidity,
            )
            existing[path] = folder.pk
            note = {}
            if row.get("special_folder_type") and not folder.special_use:
                keep_original(note, "special_folder_type", row["special_folder_type"])
            results.append(Result(row["id"], ROW, str(folder.pk), note))
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["imap_path"] = (row.get("imap_path") or row.get("name"))[:500]
        special = _SPECIAL.get((row.get("special_folder_type") or "").lower())
        d["special_folder_type"] = special or row.get("special_folder_type")

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(pk): clear_none(
                {
                    "mail_account_id": ctx.legacy_id("mail_accounts", account),
                    "imap_path": name,
                    "special_folder_type": special or None,
                }
            )
            for pk, account, name, special in Folder.objects.filter(pk__in=pks).values_list(
                "pk", "account_id", "name", "special_use"
            )
        }


# --- messages ------------------------------------------------------------------------------------------


def message_id(value: str | None) -> str:
    return (value or "").strip().strip("<>").strip()[:995]


class RawEmails(Mapper):
    table, label = "raw_emails", "mail.message"
    fks = {"user_id": ("users", True), "mail_account_id": ("mail_accounts", True)}
    mapped = frozenset(
        {
            "user_id",
            "mail_account_id",
            "imap_folder",
            "imap_uid",
            "imap_uidvalidity",
            "received_at",
            "deleted_at",
            "message_id",
            "imap_is_seen",
            "imap_is_answered",
            "imap_is_flagged",
            "imap_is_draft",
            "message_size",
            "has_attachments",
            "calendar_method",
            "encrypted_sender",
            "encrypted_subject",
            "encrypted_body",
            "encrypted_to",
            "encrypted_cc",
            "encrypted_in_reply_to",
            "encrypted_references",
        }
    )
    # Derived data the legacy made for its own AI (pseudonymised copies and their entity map, the
    # embedding): Mailhelper masks on the fly and computes its own, so these are not carried over.
    ignored = frozenset(
        {
            "email_embedding",
            "encrypted_subject_sanitized",
            "encrypted_body_sanitized",
            "encrypted_entity_map",
            "sanitization_level",
            "sanitization_time_ms",
            "sanitization_entities_count",
        }
    )

    content = frozenset({"processing_error"})  # may quote the message it failed on: kept encrypted

    def check(self, row: dict, ctx: Context) -> str | None:
        if self._owner_of(ctx, "mail_accounts", row["mail_account_id"]) != row["user_id"]:
            return "its account belongs to another user"
        return None

    def _folder(self, ctx: Context, account_pk: str, name: str, note: dict) -> int:
        folders = _folders(ctx, account_pk)
        if name not in folders:
            folders[name] = Folder.objects.create(account_id=account_pk, name=name, sync_enabled=True).pk
            ctx.report.warnings.append(f"folder created for imported mail: account {account_pk}")
        return folders[name]

    def _identities(self, ctx: Context, folder_pk: int) -> set:
        cache = ctx.cache.setdefault("identities", {})
        if folder_pk not in cache:
            cache[folder_pk] = set(
                Message.objects.filter(folder_id=folder_pk, uid__isnull=False).values_list("uidvalidity", "uid")
            )
        return cache[folder_pk]

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, messages = [], []
        now = timezone.now()
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            account_pk = ctx.row_pk("mail_accounts", row["mail_account_id"])
            note: dict = {}
            folder_pk = self._folder(ctx, account_pk, (row.get("imap_folder") or "INBOX")[:500], note)
            identity = (row.get("imap_uidvalidity"), row.get("imap_uid"))
            if row.get("imap_uid") is not None:
                seen = self._identities(ctx, folder_pk)
                if identity in seen:
                    results.append(Result(row["id"], RECORD, why="the same server message twice"))
                    continue
                seen.add(identity)
            received = row.get("received_at")
            message = Message(
                id=uuid.uuid4(),
                owner_id=owner,
                account_id=account_pk,
                folder_id=folder_pk,
                uidvalidity=row.get("imap_uidvalidity"),
                uid=row.get("imap_uid"),
                message_id=message_id(row.get("message_id")),
                date=received,
                internal_date=received,
                sort_date=received or row.get("created_at") or now,
                size=row.get("message_size") or 0,
                seen=bool(row.get("imap_is_seen")),
                flagged=bool(row.get("imap_is_flagged")),
                answered=bool(row.get("imap_is_answered")),
                draft=bool(row.get("imap_is_draft")),
                has_attachments=bool(row.get("has_attachments")),
                calendar_method=(row.get("calendar_method") or "")[:20],
                expunged_at=row.get("deleted_at"),
            )
            seal_fields(message, ctx.dek(owner))
            messages.append(message)
            ctx.cache.setdefault("raw_identity", {})[row["id"]] = (folder_pk, *identity)
            results.append(Result(row["id"], ROW, str(message.pk), note))
        Message.objects.bulk_create(messages)
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["imap_folder"] = (row.get("imap_folder") or "INBOX")[:500]
        d["message_id"] = message_id(row.get("message_id")) or None
        for column in ("imap_is_seen", "imap_is_answered", "imap_is_flagged", "imap_is_draft", "has_attachments"):
            d[column] = bool(row.get(column))
        d["message_size"] = row.get("message_size") or 0
        d["calendar_method"] = (row.get("calendar_method") or "")[:20] or None

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        rows = Message.objects.filter(pk__in=pks).values_list(
            "pk",
            "owner_id",
            "account_id",
            "folder__name",
            "uid",
            "uidvalidity",
            "date",
            "expunged_at",
            "message_id",
            "seen",
            "answered",
            "flagged",
            "draft",
            "size",
            "has_attachments",
            "calendar_method",
        )
        for pk, owner, account, folder, uid, uv, date, expunged, mid, seen, ans, flag, draft, size, att, cal in rows:
            out[str(pk)] = clear_none(
                {
                    "user_id": ctx.legacy_id("users", owner),
                    "mail_account_id": ctx.legacy_id("mail_accounts", account),
                    "imap_folder": folder,
                    "imap_uid": uid,
                    "imap_uidvalidity": uv,
                    "received_at": canonical(date),
                    "deleted_at": canonical(expunged),
                    "message_id": mid or None,
                    "imap_is_seen": seen,
                    "imap_is_answered": ans,
                    "imap_is_flagged": flag,
                    "imap_is_draft": draft,
                    "message_size": size,
                    "has_attachments": att,
                    "calendar_method": cal or None,
                }
            )
        return out

    def finish(self, ctx: Context) -> None:
        """Folders learn the UIDVALIDITY of their imported mail, so the next sync fetches only newer UIDs."""
        if ctx.dry_run:
            return
        for folder in Folder.objects.filter(pk__in=list(ctx.cache.get("identities", {})), uidvalidity__isnull=True):
            latest = (
                folder.messages.filter(uidvalidity__isnull=False)
                .order_by("-uidvalidity")
                .values_list("uidvalidity", flat=True)
                .first()
            )
            if latest is not None:
                Folder.objects.filter(pk=folder.pk).update(uidvalidity=latest)


class ServerState(Mapper):
    """The legacy's per-UID server state. A row that describes a stored message is that Message's
    server identity (folder, UIDVALIDITY, UID); any other row (not fetched, or disagreeing) is kept as
    a record. Its plain envelope subject and sender are mail content, so they are encrypted."""

    table, label = "mail_server_state", "mail.message"
    fks = {
        "user_id": ("users", True),
        "mail_account_id": ("mail_accounts", True),
        "raw_email_id": ("raw_emails", False),
    }
    mapped = frozenset({"raw_email_id", "folder", "uid", "uidvalidity"})
    content = frozenset({"envelope_from", "envelope_subject"})

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        claimed = ctx.cache.setdefault(
            "state_claimed", set(m.target_pk for m in ctx.map_of(self.table).values() if m.kind == ROW)
        )
        results = []
        for row in rows:
            message_pk = ctx.row_pk("raw_emails", row.get("raw_email_id"))
            if message_pk is None:
                results.append(Result(row["id"], RECORD, why="no stored message for this UID"))
                continue
            folder_pk, uidvalidity, uid = ctx.cache.get("raw_identity", {}).get(row["raw_email_id"]) or self._identity(
                message_pk
            )
            names = ctx.cache.setdefault("folder_names", {})
            if folder_pk not in names:
                names[folder_pk] = Folder.objects.filter(pk=folder_pk).values_list("name", flat=True).first()
            folder_name = names[folder_pk]
            if (folder_name, uidvalidity, uid) != (
                row.get("folder"),
                row.get("uidvalidity"),
                row.get("uid"),
            ) or message_pk in claimed:
                results.append(Result(row["id"], RECORD, why="differs from the stored message's identity"))
                continue
            claimed.add(message_pk)
            results.append(Result(row["id"], ROW, message_pk))
        return results

    def _identity(self, message_pk: str) -> tuple:
        return Message.objects.filter(pk=message_pk).values_list("folder_id", "uidvalidity", "uid").first()

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(pk): clear_none(
                {"raw_email_id": ctx.legacy_id("raw_emails", pk), "folder": folder, "uid": uid, "uidvalidity": uv}
            )
            for pk, folder, uid, uv in Message.objects.filter(pk__in=pks).values_list(
                "pk", "folder__name", "uid", "uidvalidity"
            )
        }


class Attachments(Mapper):
    table, label = "email_attachments", "mail.attachment"
    fks = {"raw_email_id": ("raw_emails", True)}
    mapped = frozenset({"raw_email_id", "filename", "mime_type", "size", "content_id", "encrypted_data"})
    content = frozenset({"filename"})  # encrypted in Mailhelper; kept encrypted when the row is a record

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "raw_emails", row.get("raw_email_id"))

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, attachments = [], []
        positions = ctx.cache.setdefault("positions", {})
        new = {ctx.row_pk("raw_emails", row["raw_email_id"]) for row in rows} - set(positions) - {None}
        positions.update(dict.fromkeys(new, 0))
        counted = Attachment.objects.filter(message_id__in=list(new)).values("message_id").annotate(n=Count("id"))
        positions.update({str(c["message_id"]): c["n"] for c in counted})
        for row in rows:
            message_pk = ctx.row_pk("raw_emails", row["raw_email_id"])
            if message_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            owner = ctx.user_pk(self.owner_legacy(row, ctx))
            attachment = Attachment(
                id=uuid.uuid4(),
                owner_id=owner,
                message_id=message_pk,
                position=positions[message_pk],
                content_type=(row.get("mime_type") or "application/octet-stream")[:200],
                size=row.get("size") or 0,
                content_id=(row.get("content_id") or "").strip().strip("<>")[:300],
                filename=row.get("filename") or "",
            )
            positions[message_pk] += 1
            seal_fields(attachment, ctx.dek(owner), ("filename",))
            attachments.append(attachment)
            if row.get("encrypted_data") is None and row.get("s3_key"):
                ctx.report.warnings.append(f"email_attachments #{row['id']}: data is in S3, not in the database")
            results.append(Result(row["id"], ROW, str(attachment.pk)))
        Attachment.objects.bulk_create(attachments)
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["mime_type"] = (row.get("mime_type") or "application/octet-stream")[:200]
        d["size"] = row.get("size") or 0
        d["content_id"] = (row.get("content_id") or "").strip().strip("<>")[:300] or None
        d["filename"] = row.get("filename") or None

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        for a in Attachment.objects.filter(pk__in=pks).only(
            "id", "owner_id", "message_id", "content_type", "size", "content_id", "filename"
        ):
            out[str(a.pk)] = clear_none(
                {
                    "raw_email_id": ctx.legacy_id("raw_emails", a.message_id),
                    "mime_type": a.content_type,
                    "size": a.size,
                    "content_id": a.content_id or None,
                    "filename": a.filename or None,
                }
            )
        return out


# --- trusted senders and rules -------------------------------------------------------------------------


def trusted_pattern(pattern: str | None, pattern_type: str | None) -> str:
    text = (pattern or "").strip().lower()
    if (pattern_type or "").lower() == "domain" and text and not text.startswith("@"):
        text = "@" + text
    return text[:320]


class TrustedSenders(Mapper):
    table, label = "trusted_senders", "mail.trustedsender"
    fks = {"user_id": ("users", True), "account_id": ("mail_accounts", False)}
    mapped = frozenset({"user_id", "account_id", "sender_pattern", "label", "added_at"})

    def check(self, row: dict, ctx: Context) -> str | None:
        if not trusted_pattern(row.get("sender_pattern"), row.get("pattern_type")):
            return "empty pattern"
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        seen = ctx.cache.setdefault("trusted", set())
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            account_pk = ctx.row_pk("mail_accounts", row.get("account_id"))
            pattern = trusted_pattern(row.get("sender_pattern"), row.get("pattern_type"))
            key = (owner, account_pk, pattern)
            if (
                key in seen
                or TrustedSender.objects.filter(owner_id=owner, account_id=account_pk, pattern=pattern).exists()
            ):
                results.append(Result(row["id"], RECORD, why="the same trusted sender twice"))
                continue
            seen.add(key)
            note: dict = {}
            if len(row.get("label") or "") > 200:
                keep_original(note, "label", row["label"])
            if row.get("added_at") is None:
                keep_original(note, "added_at", None)
            sender = TrustedSender(
                owner_id=owner, account_id=account_pk, pattern=pattern, note=(row.get("label") or "")[:200]
            )
            made.append((sender, row, note))
        TrustedSender.objects.bulk_create([s for s, _, _ in made])
        for sender, row, note in made:
            sender.created_at = row.get("added_at") or sender.created_at
            results.append(Result(row["id"], ROW, str(sender.pk), note))
        restore_times(TrustedSender, [s for s, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["sender_pattern"] = trusted_pattern(row.get("sender_pattern"), row.get("pattern_type"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(s.pk): clear_none(
                {
                    "user_id": ctx.legacy_id("users", s.owner_id),
                    "sender_pattern": s.pattern,
                    "account_id": ctx.legacy_id("mail_accounts", s.account_id),
                    "label": s.note or None,
                    "added_at": canonical(s.created_at),
                }
            )
            for s in TrustedSender.objects.filter(pk__in=pks)
        }


_ADDRESS_FORMS = {"sie": "formal", "formal": "formal", "du": "informal", "informal": "informal"}


class ReplyStyles(Mapper):
    """The legacy kept greeting/closing per reply style; Mailhelper has one ReplySettings per user (the
    style is chosen per draft). The user's first legacy row becomes it; further styles are records.
    Greeting and closing were plain in the legacy and are encrypted here at import; the custom
    instructions were encrypted and are converted at first login."""

    table, label = "reply_style_settings", "mail.replysettings"
    fks = {"user_id": ("users", True)}
    content = frozenset({"salutation", "closing"})  # the user's text (may name people): encrypted in records
    mapped = frozenset({"user_id", "address_form", "salutation", "closing", "encrypted_custom_instructions"})

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results = []
        done = ctx.cache.setdefault("reply_settings", set())
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            if owner in done or ReplySettings.objects.filter(owner_id=owner).exists():
                results.append(Result(row["id"], RECORD, why="a further reply style (Mailhelper keeps one per user)"))
                continue
            done.add(owner)
            note: dict = {}
            form = _ADDRESS_FORMS.get((row.get("address_form") or "").strip().lower())
            if form is None:
                keep_original(note, "address_form", row.get("address_form"))
            settings = ReplySettings(
                owner_id=owner,
                greeting=row.get("salutation") or "",
                closing=row.get("closing") or "",
                address_form=form or ReplySettings.AddressForm.FORMAL,
            )
            seal_fields(settings, ctx.dek(owner))
            settings.save()
            results.append(Result(row["id"], ROW, str(settings.pk), note))
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        if row.get("address_form"):
            d["address_form"] = _ADDRESS_FORMS.get(row["address_form"].strip().lower(), row["address_form"])

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(r.pk): clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "address_form": r.address_form,
                    "salutation": r.greeting or None,
                    "closing": r.closing or None,
                }
            )
            for r in ReplySettings.objects.filter(pk__in=pks)
        }
