"""One mapper per legacy table: which Mailhelper rows a legacy row becomes, and back for the checksums.

A mapper declares the columns it consumes (`mapped`; everything else the row holds is kept in a
LegacyRecord by the importer), its foreign keys (for orphan checks), and implements `create` (legacy
rows -> Mailhelper rows, one batch, inside the importer's transaction) and `target_rows` (Mailhelper
rows -> the mapped legacy columns, canonical, for the target checksum). `adjust` applies the
normalisations that are part of the mapping (0/1 -> bool, "SSL" -> "ssl", <id> -> id) to the source
side, so both sides are compared in the same form. Where the import had to change a value (a name
taken twice, a missing timestamp, a category Mailhelper does not know), the legacy value is kept in
the map entry's note["original"], which the target side puts back: the checksum then proves that
the value is accounted for, and the report shows what changed.

Encrypted legacy columns are never decrypted here: the importer stores them as LegacySealedValue and
the first-login conversion (conversion.py) writes them into the fields named in `conversion.APPLY`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import keyring
from accounts.fields import seal_fields
from accounts.hashers import LegacyHashError, from_werkzeug
from accounts.models import User
from mail.models import (
    Attachment,
    Folder,
    MailAccount,
    Message,
    MessageAnalysis,
    ReplySettings,
    TrustedSender,
)
from mailhelper.models import LegacyImportMap, LegacyUserKey
from rules.models import Rule, RuleLog
from tags.models import Tag, TagAssignment, TagSettings, TagSuggestion

from . import normalize, schema
from . import rules as rule_conversion
from .importer import Context, Result

ROW, RECORD, SKIPPED = LegacyImportMap.Kind.ROW, LegacyImportMap.Kind.RECORD, LegacyImportMap.Kind.SKIPPED
IMPORTED_TOTP_NAME = "Authenticator app (imported)"
WAITING_MESSAGE = "Imported from the legacy application: waiting for your first login."


def _c(value: Any) -> Any:
    return normalize.canonical(value)


def _clear_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class Mapper:
    table = ""
    label = ""  # model label of the Mailhelper rows (sealed values point at it)
    fks: dict[str, tuple[str, bool]] = {}  # column -> (legacy table, required)
    mapped: frozenset[str] = frozenset()
    not_digested: frozenset[str] = frozenset()  # consumed, but changed by design at first login
    ignored: frozenset[str] = frozenset()  # not imported at all (embeddings, derived copies)
    content: frozenset[str] = frozenset()  # plain legacy columns holding mail content: encrypted in the record
    by_design = ""  # the whole table is not imported, and why
    self_stored: frozenset[str] = frozenset()  # encrypted columns the mapper keeps itself (not sealed values)
    record_why = "Mailhelper has no equivalent yet; kept for later"

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return row.get("user_id")

    def owner_pk(self, row: dict, result: Result, ctx: Context) -> int | None:
        return ctx.user_pk(self.owner_legacy(row, ctx))

    def check(self, row: dict, ctx: Context) -> str | None:
        return None

    def predict_skip(self, row: dict, ctx: Context) -> str | None:
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        return [Result(row["id"], RECORD, why=self.record_why) for row in rows]

    def finish(self, ctx: Context) -> None:
        pass

    def report_existing(self, row: dict, ctx: Context) -> None:
        """What to report again about a row an earlier run imported (so every run's report is complete)."""

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        pass

    def source_canonical(self, row: dict, ctx: Context, kind: str) -> dict:
        d = {}
        for column, value in row.items():
            if column in self.not_digested or column in self.ignored or value is None:
                continue
            if schema.TABLES[self.table].column(column).type == schema.ENCRYPTED:
                d[column] = normalize.fingerprint(value)
            else:
                d[column] = _c(value)
        if kind == ROW:
            self.adjust(row, d, ctx)
        return _clear_none(d)

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {}

    # helpers
    def _owner_of(self, ctx: Context, table: str, legacy_id: int | None) -> int | None:
        return ctx.all_owners.get(table, {}).get(legacy_id)


def _original(note: dict, column: str, value: Any) -> None:
    note.setdefault("original", {})[column] = _c(value)


def _restore(model, objects: list, fields: list[str]) -> None:
    """Set auto_now_add columns to the legacy values (Django overwrites them on insert)."""
    if objects:
        model.objects.bulk_update(objects, fields)


def _unique_name(name: str, taken: set[str], limit: int) -> str:
    base, n = name[:limit], 2
    candidate = base
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = base[: limit - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


# --- users ---------------------------------------------------------------------------------------------


def totp_key(secret: str | None) -> bytes | None:
    """The legacy TOTP secret (base32 text, as pyotp makes it) as raw key bytes; None if not base32."""
    if not secret:
        return None
    text = "".join(secret.split()).upper().rstrip("=")
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return key or None


def _b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


class Users(Mapper):
    table, label = "users", "accounts.user"
    mapped = frozenset(
        {
            "username",
            "email",
            "password_hash",
            "failed_login_attempts",
            "locked_until",
            "created_at",
            "salt",
            "encrypted_dek",
            "totp_secret",
            "totp_enabled",
            "enable_auto_assignment",
        }
    )
    # The password is re-hashed and the legacy key cleared at first login, by design.
    not_digested = frozenset({"password_hash", "salt", "encrypted_dek"})
    self_stored = frozenset({"encrypted_dek"})  # kept in LegacyUserKey, not as a sealed value

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return row["id"]

    def owner_pk(self, row: dict, result: Result, ctx: Context) -> int | None:
        return int(result.target_pk) if result.kind == ROW else None

    def check(self, row: dict, ctx: Context) -> str | None:
        # Remember the legacy key of every user (see importer._reopen_converted_users).
        ctx.cache.setdefault("legacy_keys", {})[row["id"]] = (row.get("salt") or "", row.get("encrypted_dek") or "")
        return None

    def predict_skip(self, row: dict, ctx: Context) -> str | None:
        if not row.get("username") or not row.get("email"):
            return "no username or email"
        taken = User.objects.filter(Q(username=row["username"]) | Q(email__iexact=row["email"])).exists()
        return "username or email already used by a Mailhelper user" if taken else None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results = []
        for row in rows:
            why = self.predict_skip(row, ctx)
            if why:
                results.append(Result(row["id"], SKIPPED, why=why))
                continue
            note: dict = {}
            user = User(
                username=row["username"][:150],
                email=row["email"],
                failed_login_count=row.get("failed_login_attempts") or 0,
                locked_until=row.get("locked_until"),
                date_joined=row.get("created_at") or timezone.now(),
            )
            if row.get("failed_login_attempts") is None:
                _original(note, "failed_login_attempts", None)
            if row.get("created_at") is None:
                _original(note, "created_at", None)
            try:
                user.password = from_werkzeug(row.get("password_hash") or "")
            except LegacyHashError:
                user.set_unusable_password()
                note["password"] = "not a verifiable werkzeug hash: the user cannot log in until an operator sets one"
                ctx.report.warnings.append(f"users #{row['id']}: password hash not verifiable (user cannot log in)")
            user.save()
            keyring.create_server_keyring(user)
            LegacyUserKey.objects.create(
                user=user, legacy_id=row["id"], salt=row.get("salt") or "", encrypted_dek=row.get("encrypted_dek") or ""
            )
            if not row.get("salt") or not row.get("encrypted_dek"):
                ctx.report.warnings.append(f"users #{row['id']}: no legacy key; encrypted values cannot be converted")
            key = totp_key(row.get("totp_secret")) if row.get("totp_enabled") else None
            if key is not None:
                TOTPDevice.objects.create(user=user, name=IMPORTED_TOTP_NAME, key=key.hex(), confirmed=True)
            elif row.get("totp_enabled"):
                _original(note, "totp_secret", row.get("totp_secret"))
                ctx.report.warnings.append(f"users #{row['id']}: TOTP secret is not base32; the user enrols again")
            if row.get("enable_auto_assignment") is not None:
                TagSettings.objects.update_or_create(owner=user, defaults={"auto_apply": row["enable_auto_assignment"]})
            results.append(Result(row["id"], ROW, str(user.pk), note))
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["totp_enabled"] = bool(row.get("totp_enabled"))
        key = totp_key(row.get("totp_secret")) if row.get("totp_enabled") else None
        d["totp_secret"] = _b32(key) if key else (row.get("totp_secret") if row.get("totp_enabled") else None)

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        devices = {d.user_id: d for d in TOTPDevice.objects.filter(user_id__in=pks, name=IMPORTED_TOTP_NAME)}
        auto = dict(TagSettings.objects.filter(owner_id__in=pks).values_list("owner_id", "auto_apply"))
        out = {}
        for user in User.objects.filter(pk__in=pks):
            device = devices.get(user.pk)
            out[str(user.pk)] = _clear_none(
                {
                    "username": user.username,
                    "email": user.email,
                    "failed_login_attempts": user.failed_login_count,
                    "locked_until": _c(user.locked_until),
                    "created_at": _c(user.date_joined),
                    "totp_enabled": device is not None and device.confirmed,
                    "totp_secret": _b32(device.bin_key) if device else None,
                    "enable_auto_assignment": auto.get(user.pk),
                }
            )
        return out


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


class MailAccounts(Mapper):
    table, label = "mail_accounts", "mail.mailaccount"
    fks = {"user_id": ("users", True)}
    mapped = frozenset(
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
        }
    )

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
            name = _unique_name(legacy_name, names[owner], 100)
            if name != row.get("name"):
                _original(note, "name", row.get("name"))
            imap_port, smtp_port = row.get("imap_port") or 993, row.get("smtp_port") or 587
            account = MailAccount(
                owner_id=owner,
                name=name,
                email_address="",
                imap_host="",
                imap_port=imap_port,
                imap_security=security(row.get("imap_encryption"), imap_port),
                imap_username="",
                smtp_host="",
                smtp_port=smtp_port,
                smtp_security=security(row.get("smtp_encryption"), smtp_port),
                enabled=False,
                status=MailAccount.Status.LOCKED,
                status_message=WAITING_MESSAGE,
                last_sync_at=row.get("last_fetch_at"),
            )
            seal_fields(account, ctx.dek(owner))
            account.save()  # one by one: the post_save signal creates the (disabled) beat row
            if row.get("created_at"):
                account.created_at = row["created_at"]
                created.append(account)
            else:
                _original(note, "created_at", None)
            ctx.cache.setdefault("uidvalidity", {})[row["id"]] = _parse_uidvalidity(row.get("folder_uidvalidity"))
            results.append(Result(row["id"], ROW, str(account.pk), note))
        _restore(MailAccount, created, ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["imap_port"] = row.get("imap_port") or 993
        d["smtp_port"] = row.get("smtp_port") or 587
        d["imap_encryption"] = security(row.get("imap_encryption"), d["imap_port"])
        d["smtp_encryption"] = security(row.get("smtp_encryption"), d["smtp_port"])

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        for a in MailAccount.objects.filter(pk__in=pks).only(
            "id",
            "owner_id",
            "name",
            "imap_port",
            "smtp_port",
            "imap_security",
            "smtp_security",
            "enabled",
            "last_sync_at",
            "created_at",
        ):
            note = entries[str(a.pk)].note
            out[str(a.pk)] = _clear_none(
                {
                    "user_id": ctx.legacy_id("users", a.owner_id),
                    "name": a.name,
                    "imap_port": a.imap_port,
                    "smtp_port": a.smtp_port,
                    "imap_encryption": a.imap_security,
                    "smtp_encryption": a.smtp_security,
                    "enabled": note.get("legacy_enabled", a.enabled),
                    "last_fetch_at": _c(a.last_sync_at),
                    "created_at": _c(a.created_at),
                }
            )
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
                _original(note, "special_folder_type", row["special_folder_type"])
            results.append(Result(row["id"], ROW, str(folder.pk), note))
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["imap_path"] = (row.get("imap_path") or row.get("name"))[:500]
        special = _SPECIAL.get((row.get("special_folder_type") or "").lower())
        d["special_folder_type"] = special or row.get("special_folder_type")

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(pk): _clear_none(
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
            out[str(pk)] = _clear_none(
                {
                    "user_id": ctx.legacy_id("users", owner),
                    "mail_account_id": ctx.legacy_id("mail_accounts", account),
                    "imap_folder": folder,
                    "imap_uid": uid,
                    "imap_uidvalidity": uv,
                    "received_at": _c(date),
                    "deleted_at": _c(expunged),
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
            str(pk): _clear_none(
                {"raw_email_id": ctx.legacy_id("raw_emails", pk), "folder": folder, "uid": uid, "uidvalidity": uv}
            )
            for pk, folder, uid, uv in Message.objects.filter(pk__in=pks).values_list(
                "pk", "folder__name", "uid", "uidvalidity"
            )
        }


def _decode_data_hint() -> str:
    return "attachment data: base64 text of the bytes (plain text otherwise)"


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
            out[str(a.pk)] = _clear_none(
                {
                    "raw_email_id": ctx.legacy_id("raw_emails", a.message_id),
                    "mime_type": a.content_type,
                    "size": a.size,
                    "content_id": a.content_id or None,
                    "filename": a.filename or None,
                }
            )
        return out


# --- analysis ------------------------------------------------------------------------------------------


def _level(value: Any) -> int | None:
    return value if isinstance(value, int) and 1 <= value <= 3 else None


class ProcessedEmails(Mapper):
    """The legacy analysis of a message -> MessageAnalysis (state done). The legacy's second
    "optimize" pass and its German text/tags are kept in the record; the first pass is what Mailhelper
    shows, with the user's overrides as corrections."""

    table, label = "processed_emails", "mail.messageanalysis"
    fks = {"raw_email_id": ("raw_emails", True)}
    mapped = frozenset(
        {
            "raw_email_id",
            "dringlichkeit",
            "wichtigkeit",
            "kategorie_aktion",
            "spam_flag",
            "encrypted_summary_de",
            "ai_confidence",
            "analysis_method",
            "done",
            "done_at",
            "processed_at",
            "user_override_dringlichkeit",
            "user_override_wichtigkeit",
            "user_override_kategorie",
            "user_override_spam_flag",
        }
    )

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "raw_emails", row.get("raw_email_id"))

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, analyses = [], []
        analysed = ctx.cache.setdefault("analysed", set())
        messages = [pk for pk in (ctx.row_pk("raw_emails", row["raw_email_id"]) for row in rows) if pk]
        analysed.update(
            str(m) for m in MessageAnalysis.objects.filter(message_id__in=messages).values_list("message_id", flat=True)
        )
        for row in rows:
            message_pk = ctx.row_pk("raw_emails", row["raw_email_id"])
            if message_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            if message_pk in analysed:
                results.append(Result(row["id"], RECORD, why="a second analysis of the same message"))
                continue
            analysed.add(message_pk)
            note: dict = {}
            owner = ctx.user_pk(self.owner_legacy(row, ctx))
            for column in ("user_override_dringlichkeit", "user_override_wichtigkeit"):
                if row.get(column) is not None and _level(row[column]) is None:
                    _original(note, column, row[column])
            for column in ("kategorie_aktion", "user_override_kategorie"):
                if row.get(column) and rule_conversion.category(row[column]) is None:
                    _original(note, column, row[column])
            done_at = row.get("done_at") if row.get("done") else None
            if row.get("done") and done_at is None:
                done_at = row.get("processed_at") or timezone.now()
                _original(note, "done_at", None)
            elif not row.get("done") and row.get("done_at") is not None:
                _original(note, "done_at", row["done_at"])
            analysis = MessageAnalysis(
                id=uuid.uuid4(),
                owner_id=owner,
                message_id=message_pk,
                state=MessageAnalysis.State.DONE,
                urgency=_level(row.get("dringlichkeit")) or 2,
                importance=_level(row.get("wichtigkeit")) or 2,
                category=rule_conversion.category(row.get("kategorie_aktion")) or "information",
                is_spam=bool(row.get("spam_flag")),
                confidence=row.get("ai_confidence") or 0.0,
                method=(row.get("analysis_method") or "legacy")[:120],
                corrected_urgency=_level(row.get("user_override_dringlichkeit")),
                corrected_importance=_level(row.get("user_override_wichtigkeit")),
                corrected_category=rule_conversion.category(row.get("user_override_kategorie")) or "",
                corrected_spam=row.get("user_override_spam_flag"),
                done_at=done_at,
                analysed_at=row.get("processed_at"),
            )
            if _level(row.get("dringlichkeit")) is None:
                _original(note, "dringlichkeit", row.get("dringlichkeit"))
            if _level(row.get("wichtigkeit")) is None:
                _original(note, "wichtigkeit", row.get("wichtigkeit"))
            if rule_conversion.category(row.get("kategorie_aktion")) is None:
                _original(note, "kategorie_aktion", row.get("kategorie_aktion"))
            analysis.refresh_final()
            seal_fields(analysis, ctx.dek(owner))
            analyses.append(analysis)
            results.append(Result(row["id"], ROW, str(analysis.pk), note))
        MessageAnalysis.objects.bulk_create(analyses)
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        for column in ("kategorie_aktion", "user_override_kategorie"):
            if row.get(column):
                d[column] = rule_conversion.category(row[column]) or row[column]
        d["spam_flag"] = bool(row.get("spam_flag"))
        d["ai_confidence"] = _c(row.get("ai_confidence") or 0.0)
        d["analysis_method"] = (row.get("analysis_method") or "legacy")[:120]
        d["done"] = bool(row.get("done"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        for a in MessageAnalysis.objects.filter(pk__in=pks).only(
            "id",
            "message_id",
            "urgency",
            "importance",
            "category",
            "is_spam",
            "confidence",
            "method",
            "done_at",
            "analysed_at",
            "corrected_urgency",
            "corrected_importance",
            "corrected_category",
            "corrected_spam",
        ):
            out[str(a.pk)] = _clear_none(
                {
                    "raw_email_id": ctx.legacy_id("raw_emails", a.message_id),
                    "dringlichkeit": a.urgency,
                    "wichtigkeit": a.importance,
                    "kategorie_aktion": a.category or None,
                    "spam_flag": a.is_spam,
                    "ai_confidence": _c(a.confidence),
                    "analysis_method": a.method,
                    "done": a.done_at is not None,
                    "done_at": _c(a.done_at),
                    "processed_at": _c(a.analysed_at),
                    "user_override_dringlichkeit": a.corrected_urgency,
                    "user_override_wichtigkeit": a.corrected_importance,
                    "user_override_kategorie": a.corrected_category or None,
                    "user_override_spam_flag": a.corrected_spam,
                }
            )
        return out


def _existing_pairs(model, column: str, message_pks: list) -> set[tuple[int, str]]:
    """(tag or rule id, message pk) pairs that already exist for these messages: one query per batch."""
    pks = [pk for pk in message_pks if pk]
    rows = model.objects.filter(message_id__in=pks).values_list(column, "message_id") if pks else []
    return {(other, str(message)) for other, message in rows}


def message_of_analysis(ctx: Context, processed_legacy_id: int | None) -> str | None:
    """The Message pk of an imported legacy processed_emails row (assignments and logs point at those)."""
    pk = ctx.row_pk("processed_emails", processed_legacy_id)
    if pk is None:
        return None
    cache = ctx.cache.setdefault("analysis_message", {})
    if pk not in cache:  # load every imported analysis once, in slices under PostgreSQL's parameter limit
        pending = [
            m.target_pk for m in ctx.map_of("processed_emails").values() if m.kind == ROW and m.target_pk not in cache
        ]
        for start in range(0, len(pending), 5000):
            rows = MessageAnalysis.objects.filter(pk__in=pending[start : start + 5000]).values_list("pk", "message_id")
            cache.update({str(a): str(m) for a, m in rows})
        cache.setdefault(pk, None)
    return cache.get(pk)


# --- tags ----------------------------------------------------------------------------------------------

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class EmailTags(Mapper):
    table, label = "email_tags", "tags.tag"
    fks = {"user_id": ("users", True)}
    mapped = frozenset({"user_id", "name", "color", "description", "created_at"})
    ignored = frozenset({"learned_embedding", "negative_embedding"})

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, tags = [], []
        names = ctx.cache.setdefault("tag_names", {})
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            if owner not in names:
                names[owner] = {n.lower() for n in Tag.objects.filter(owner_id=owner).values_list("name", flat=True)}
            note: dict = {}
            name = _unique_name((row.get("name") or "(unnamed)").strip() or "(unnamed)", names[owner], 60)
            if name != row.get("name"):
                _original(note, "name", row.get("name"))
            color = row.get("color") or ""
            if not _COLOR.match(color):
                _original(note, "color", row.get("color"))
                color = "#4c6ef5"
            description = row.get("description") or ""
            if len(description) > 300:
                _original(note, "description", description)
            if row.get("created_at") is None:
                _original(note, "created_at", None)
            tag = Tag(owner_id=owner, name=name, color=color, description=description[:300])
            tags.append((tag, row, note))
        Tag.objects.bulk_create([t for t, _, _ in tags])
        for tag, row, note in tags:
            tag.created_at = row.get("created_at") or tag.created_at
            results.append(Result(row["id"], ROW, str(tag.pk), note))
        _restore(Tag, [t for t, _, _ in tags], ["created_at"])
        return results

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(t.pk): _clear_none(
                {
                    "user_id": ctx.legacy_id("users", t.owner_id),
                    "name": t.name,
                    "color": t.color,
                    "description": t.description or None,
                    "created_at": _c(t.created_at),
                }
            )
            for t in Tag.objects.filter(pk__in=pks)
        }


class TagAssignments(Mapper):
    table, label = "email_tag_assignments", "tags.tagassignment"
    fks = {"email_id": ("processed_emails", True), "tag_id": ("email_tags", True)}
    mapped = frozenset({"email_id", "tag_id", "assigned_at", "auto_assigned"})

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "email_tags", row.get("tag_id"))

    def check(self, row: dict, ctx: Context) -> str | None:
        if self._owner_of(ctx, "processed_emails", row["email_id"]) != self.owner_legacy(row, ctx):
            return "tag and message belong to different users"
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        pairs = ctx.cache.setdefault("assigned", set())
        pairs.update(_existing_pairs(TagAssignment, "tag_id", [message_of_analysis(ctx, r["email_id"]) for r in rows]))
        for row in rows:
            message_pk = message_of_analysis(ctx, row["email_id"])
            tag_pk = ctx.row_pk("email_tags", row["tag_id"])
            if message_pk is None or tag_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            key = (int(tag_pk), message_pk)
            if key in pairs:
                results.append(Result(row["id"], RECORD, why="the same tag on the same message twice"))
                continue
            pairs.add(key)
            note: dict = {}
            if row.get("assigned_at") is None:
                _original(note, "assigned_at", None)
            assignment = TagAssignment(
                owner_id=ctx.user_pk(self.owner_legacy(row, ctx)),
                tag_id=tag_pk,
                message_id=message_pk,
                source=TagAssignment.Source.SUGGESTION if row.get("auto_assigned") else TagAssignment.Source.MANUAL,
            )
            made.append((assignment, row, note))
        TagAssignment.objects.bulk_create([a for a, _, _ in made])
        for assignment, row, note in made:
            assignment.created_at = row.get("assigned_at") or assignment.created_at
            results.append(Result(row["id"], ROW, str(assignment.pk), note))
        _restore(TagAssignment, [a for a, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["auto_assigned"] = bool(row.get("auto_assigned"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__tag_assignments__pk__in=pks).values_list(
                "pk", "message_id"
            )
        }
        out = {}
        for a in TagAssignment.objects.filter(pk__in=pks):
            out[str(a.pk)] = _clear_none(
                {
                    "email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(a.message_id))),
                    "tag_id": ctx.legacy_id("email_tags", a.tag_id),
                    "assigned_at": _c(a.created_at),
                    "auto_assigned": a.source == TagAssignment.Source.SUGGESTION,
                }
            )
        return out


class TagSuggestionQueue(Mapper):
    table = "tag_suggestion_queue"
    fks = {
        "user_id": ("users", True),
        "source_email_id": ("processed_emails", False),
        "merged_into_tag_id": ("email_tags", False),
    }
    record_why = "Mailhelper suggests existing tags, not new tag names; kept for later"


class TagNegativeExamples(Mapper):
    """A tag the user rejected for a message -> a rejected TagSuggestion (so it is not suggested again)."""

    table, label = "tag_negative_examples", "tags.tagsuggestion"
    fks = {"tag_id": ("email_tags", True), "email_id": ("processed_emails", True)}
    mapped = frozenset({"tag_id", "email_id", "created_at"})
    ignored = frozenset({"negative_embedding"})

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "email_tags", row.get("tag_id"))

    def check(self, row: dict, ctx: Context) -> str | None:
        if self._owner_of(ctx, "processed_emails", row["email_id"]) != self.owner_legacy(row, ctx):
            return "tag and message belong to different users"
        return None

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        pairs = ctx.cache.setdefault("rejected", set())
        pairs.update(_existing_pairs(TagSuggestion, "tag_id", [message_of_analysis(ctx, r["email_id"]) for r in rows]))
        for row in rows:
            message_pk = message_of_analysis(ctx, row["email_id"])
            tag_pk = ctx.row_pk("email_tags", row["tag_id"])
            if message_pk is None or tag_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            key = (int(tag_pk), message_pk)
            if key in pairs:
                results.append(Result(row["id"], RECORD, why="the same rejection twice"))
                continue
            pairs.add(key)
            suggestion = TagSuggestion(
                owner_id=ctx.user_pk(self.owner_legacy(row, ctx)),
                tag_id=tag_pk,
                message_id=message_pk,
                score=0.0,
                state=TagSuggestion.State.REJECTED,
                decided_at=row.get("created_at"),
            )
            made.append((suggestion, row))
        TagSuggestion.objects.bulk_create([s for s, _ in made])
        results += [Result(row["id"], ROW, str(s.pk)) for s, row in made]
        return results

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__tag_suggestions__pk__in=pks).values_list(
                "pk", "message_id"
            )
        }
        return {
            str(s.pk): _clear_none(
                {
                    "tag_id": ctx.legacy_id("email_tags", s.tag_id),
                    "created_at": _c(s.decided_at),
                    "email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(s.message_id))),
                }
            )
            for s in TagSuggestion.objects.filter(pk__in=pks)
        }


class SenderPatterns(Mapper):
    table = "sender_patterns"
    fks = {"user_id": ("users", True)}
    record_why = "sender statistics by hash; Mailhelper learns senders in its own classifier"


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
                _original(note, "label", row["label"])
            if row.get("added_at") is None:
                _original(note, "added_at", None)
            sender = TrustedSender(
                owner_id=owner, account_id=account_pk, pattern=pattern, note=(row.get("label") or "")[:200]
            )
            made.append((sender, row, note))
        TrustedSender.objects.bulk_create([s for s, _, _ in made])
        for sender, row, note in made:
            sender.created_at = row.get("added_at") or sender.created_at
            results.append(Result(row["id"], ROW, str(sender.pk), note))
        _restore(TrustedSender, [s for s, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["sender_pattern"] = trusted_pattern(row.get("sender_pattern"), row.get("pattern_type"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(s.pk): _clear_none(
                {
                    "user_id": ctx.legacy_id("users", s.owner_id),
                    "sender_pattern": s.pattern,
                    "account_id": ctx.legacy_id("mail_accounts", s.account_id),
                    "label": s.note or None,
                    "added_at": _c(s.created_at),
                }
            )
            for s in TrustedSender.objects.filter(pk__in=pks)
        }


def _resolver(ctx: Context, owner: int | None) -> rule_conversion.Resolver:
    if ctx.dry_run or owner is None:
        tags = ctx.present.get("email_tags", set())
        return rule_conversion.Resolver(
            tag=lambda v: 1 if (isinstance(v, int) and v in tags) or (isinstance(v, str) and v.strip()) else None,
            folder=lambda v: 1 if isinstance(v, str) and v.strip() else None,
        )
    cache = ctx.cache.setdefault("resolvers", {})
    if owner not in cache:
        by_name = {n.lower(): pk for pk, n in Tag.objects.filter(owner_id=owner).values_list("pk", "name")}
        folders: dict[str, int] = {}
        for pk, name in Folder.objects.filter(account__owner_id=owner).order_by("pk").values_list("pk", "name"):
            folders.setdefault(name, pk)

        def tag(value: Any) -> int | None:
            if isinstance(value, int) and not isinstance(value, bool):
                pk = ctx.row_pk("email_tags", value)
                return (
                    int(pk)
                    if pk and ctx.owner.get("email_tags", {}).get(value) == ctx.legacy_id("users", owner)
                    else None
                )
            return by_name.get(value.strip().lower()) if isinstance(value, str) else None

        def folder(value: Any) -> int | None:
            return folders.get(value.strip()) if isinstance(value, str) else None

        cache[owner] = rule_conversion.Resolver(tag=tag, folder=folder)
    return cache[owner]


class AutoRules(Mapper):
    table, label = "auto_rules", "rules.rule"
    fks = {"user_id": ("users", True)}
    mapped = frozenset(
        {
            "user_id",
            "name",
            "is_active",
            "priority",
            "conditions_json",
            "actions_json",
            "times_triggered",
            "last_triggered_at",
            "created_at",
        }
    )

    def _convert(self, row, ctx) -> rule_conversion.RuleConversion:
        return rule_conversion.convert_rule(
            row.get("conditions_json"), row.get("actions_json"), _resolver(ctx, ctx.user_pk(row["user_id"]))
        )

    def _report(self, row, conversion, ctx) -> None:
        for key in conversion.unconverted:
            ctx.report.unknown_rule_keys.append(f"auto_rules #{row['id']} ({row.get('name') or ''}): {key}")
        for problem in conversion.problems:
            ctx.report.warnings.append(f"auto_rules #{row['id']}: {problem}")

    def predict_skip(self, row: dict, ctx: Context) -> str | None:
        self._report(row, self._convert(row, ctx), ctx)
        return None

    def report_existing(self, row: dict, ctx: Context) -> None:
        self._report(row, self._convert(row, ctx), ctx)

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        for row in rows:
            conversion = self._convert(row, ctx)
            self._report(row, conversion, ctx)
            if conversion.definition is None:
                results.append(Result(row["id"], RECORD, why="no condition or action could be converted"))
                continue
            note: dict = {}
            if conversion.unconverted or conversion.problems:
                note["unconverted"] = conversion.unconverted
                note["problems"] = conversion.problems
            enabled = bool(row.get("is_active")) and conversion.complete
            if enabled != bool(row.get("is_active")):
                _original(note, "is_active", row.get("is_active"))
            if row.get("created_at") is None:
                _original(note, "created_at", None)
            rule = Rule(
                owner_id=ctx.user_pk(row["user_id"]),
                name=(row.get("name") or "(unnamed rule)")[:120],
                order=max(0, row.get("priority") or 0),
                enabled=enabled,
                definition=conversion.definition,
                times_triggered=max(0, row.get("times_triggered") or 0),
                last_triggered_at=row.get("last_triggered_at"),
            )
            if rule.name != row.get("name"):
                _original(note, "name", row.get("name"))
            made.append((rule, row, note))
        Rule.objects.bulk_create([r for r, _, _ in made])
        for rule, row, note in made:
            rule.created_at = row.get("created_at") or rule.created_at
            results.append(Result(row["id"], ROW, str(rule.pk), note))
        _restore(Rule, [r for r, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d.pop("conditions_json", None)
        d.pop("actions_json", None)
        d["definition"] = self._convert(row, ctx).definition
        d["is_active"] = bool(row.get("is_active"))
        d["priority"] = max(0, row.get("priority") or 0)
        d["times_triggered"] = max(0, row.get("times_triggered") or 0)

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(r.pk): _clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "name": r.name,
                    "is_active": r.enabled,
                    "priority": r.order,
                    "definition": r.definition,
                    "times_triggered": r.times_triggered,
                    "last_triggered_at": _c(r.last_triggered_at),
                    "created_at": _c(r.created_at),
                }
            )
            for r in Rule.objects.filter(pk__in=pks)
        }


class RuleLogs(Mapper):
    table, label = "rule_execution_logs", "rules.rulelog"
    fks = {
        "user_id": ("users", True),
        "rule_id": ("auto_rules", True),
        "processed_email_id": ("processed_emails", False),
        "mail_account_id": ("mail_accounts", False),
    }
    mapped = frozenset(
        {"user_id", "rule_id", "processed_email_id", "executed_at", "success", "error_message", "action_type"}
    )

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        pairs = ctx.cache.setdefault("logged", set())
        messages = [message_of_analysis(ctx, r.get("processed_email_id")) for r in rows]
        pairs.update(_existing_pairs(RuleLog, "rule_id", messages))
        for row in rows:
            rule_pk = ctx.row_pk("auto_rules", row["rule_id"])
            message_pk = message_of_analysis(ctx, row.get("processed_email_id"))
            if rule_pk is None or message_pk is None:
                results.append(Result(row["id"], RECORD, why="its rule or message is not a Mailhelper row"))
                continue
            key = (int(rule_pk), message_pk)
            if key in pairs:
                results.append(Result(row["id"], RECORD, why="a second log of the same rule on the same message"))
                continue
            pairs.add(key)
            note: dict = {}
            if len(row.get("error_message") or "") > 300:
                _original(note, "error_message", row["error_message"])
            if row.get("executed_at") is None:
                _original(note, "executed_at", None)
            log = RuleLog(
                owner_id=ctx.user_pk(row["user_id"]),
                rule_id=rule_pk,
                message_id=message_pk,
                actions=[row["action_type"]] if row.get("action_type") else [],
                success=row.get("success") is not False,
                error=(row.get("error_message") or "")[:300],
            )
            made.append((log, row, note))
        RuleLog.objects.bulk_create([r for r, _, _ in made])
        for log, row, note in made:
            log.ran_at = row.get("executed_at") or log.ran_at
            results.append(Result(row["id"], ROW, str(log.pk), note))
        _restore(RuleLog, [r for r, _, _ in made], ["ran_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["success"] = row.get("success") is not False

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__rule_logs__pk__in=pks).values_list("pk", "message_id")
        }
        return {
            str(r.pk): _clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "rule_id": ctx.legacy_id("auto_rules", r.rule_id),
                    "processed_email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(r.message_id))),
                    "executed_at": _c(r.ran_at),
                    "success": r.success,
                    "error_message": r.error or None,
                    "action_type": r.actions[0] if r.actions else None,
                }
            )
            for r in RuleLog.objects.filter(pk__in=pks)
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
                _original(note, "address_form", row.get("address_form"))
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
            str(r.pk): _clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "address_form": r.address_form,
                    "salutation": r.greeting or None,
                    "closing": r.closing or None,
                }
            )
            for r in ReplySettings.objects.filter(pk__in=pks)
        }


class RecoveryCodes(Mapper):
    table = "recovery_codes"
    fks = {"user_id": ("users", True)}
    by_design = "legacy codes are hashes and cannot unlock a Mailhelper data key; users make new codes at first login"


MAPPERS: list[Mapper] = [
    Users(),
    MailAccounts(),
    EmailFolders(),
    RawEmails(),
    ServerState(),
    Attachments(),
    ProcessedEmails(),
    EmailTags(),
    TagAssignments(),
    TagSuggestionQueue(),
    TagNegativeExamples(),
    SenderPatterns(),
    TrustedSenders(),
    AutoRules(),
    RuleLogs(),
    ReplyStyles(),
    RecoveryCodes(),
]
