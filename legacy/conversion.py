"""First login of an imported user: the legacy data key, then the user's sealed values converted.

1. `on_password_verified` (called by the login view after Django accepted the legacy password) derives
   the legacy KEK (PBKDF2, 600,000 iterations), unwraps the legacy DEK and caches it in Redis sealed
   under the server sync key with a short TTL - the way keyring caches a strict-mode user's key. The
   view then queues the conversion task with nothing but the user id.
2. `convert_user` (the task's service) opens the cached key, and for each row with sealed values
   decrypts them and writes the plaintext into the Mailhelper fields (encrypted with the user's
   Mailhelper key by the encrypted fields on save), recomputes what depends on the plaintext (sender
   address, recipients, thread key, keyword index, and a message source rebuilt from the stored
   fields, since the legacy kept none), and clears the ciphertext - one transaction per chunk of rows,
   so a killed task re-runs safely and continues where it stopped; one run per user at a time (an
   advisory lock), so two logins in a row do not convert twice. Finally it unlocks the imported
   accounts, queues analysis for mail the legacy never analysed, and forgets the key.

Nothing here logs, raises or returns a key, a password or a decrypted value.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet, UUIDField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts import crypto, keyring
from accounts.models import User
from analysis.models import MessageAnalysis
from core.db import locks
from legacy.models import LegacyImportMap, LegacyRecord, LegacySealedValue, LegacyUserKey
from mail import threading_keys
from mail.models import AccountSignature, Attachment, MailAccount, Message, ReplySettings

from . import legacy_crypto
from .mappers import WAITING_MESSAGE

log = logging.getLogger(__name__)

KEY_TTL_SECONDS = 60 * 60  # long enough for a large mailbox; a re-login starts a fresh hour
CHUNK = 200  # rows per transaction


def _cache_key(user_id: int) -> str:
    return f"legacy-dek:{user_id}"


def _aad(user_id: int) -> bytes:
    return f"mailhelper/legacy-dek/v1|{user_id}".encode()


def pending_key(user: User) -> LegacyUserKey | None:
    return LegacyUserKey.objects.filter(user=user).exclude(state=LegacyUserKey.State.DONE).first()


def on_password_verified(user: User, password: str) -> bool:
    """Derive and cache the legacy key after a successful login; True when conversion should be queued."""
    key = pending_key(user)
    if key is None:
        return False
    if not key.salt or not key.encrypted_dek:
        LegacyUserKey.objects.filter(pk=key.pk).update(
            state=LegacyUserKey.State.FAILED, failure="no legacy key was imported"
        )
        return False
    try:
        dek = legacy_crypto.unwrap_dek(password, key.salt, key.encrypted_dek)
    except legacy_crypto.LegacyDecryptionError:
        log.warning("the legacy data key of user %s does not open with the accepted password", user.pk)
        LegacyUserKey.objects.filter(pk=key.pk).update(
            state=LegacyUserKey.State.FAILED, failure="the legacy data key does not open with this password"
        )
        return False
    cache.set(_cache_key(user.pk), crypto.seal(keyring.load_sync_key(), dek, _aad(user.pk)), timeout=KEY_TTL_SECONDS)
    LegacyUserKey.objects.filter(pk=key.pk).update(state=LegacyUserKey.State.CONVERTING, failure="")
    return True


def _legacy_dek(user_id: int) -> bytes | None:
    sealed = cache.get(_cache_key(user_id))
    if sealed is None:
        return None
    try:
        return crypto.open_sealed(keyring.load_sync_key(), sealed, _aad(user_id))
    except crypto.DecryptionError:  # sealed under a sync key rotated since: as if expired
        return None


def forget_legacy_key(user_id: int) -> None:
    cache.delete(_cache_key(user_id))


# --- writing plaintext into Mailhelper fields -----------------------------------------------------------------


def _addresses(text: str) -> list[str]:
    return [addr.strip().lower()[:320] for _, addr in getaddresses([text]) if addr.strip()]


def _msg_ids(text: str) -> list[str]:
    return [token.strip("<>,")[:995] for token in text.replace(",", " ").split() if token.strip("<>,")]


def _apply_message(message: Message, plain: dict[str, str], legacy_secrets: dict[str, dict]) -> None:
    from analysis.search import index_ids
    from mail.parsing import html_to_text, normalize_subject, sanitize_html
    from mail.search_tokens import search_key_for
    from mail.threading_keys import storable_thread_key

    owner_id = message.owner_id
    if "encrypted_sender" in plain:
        name, address = parseaddr(plain["encrypted_sender"])
        message.from_name, message.from_address = name.strip()[:300], address.strip().lower()[:320]
    if "encrypted_subject" in plain:
        message.subject = plain["encrypted_subject"]
    if "encrypted_body" in plain:
        body = plain["encrypted_body"]
        if "<html" in body[:2000].lower() or "<body" in body[:2000].lower() or "<p>" in body[:2000].lower():
            message.html_body, message.has_remote_images = sanitize_html(body)
            message.text_body = html_to_text(message.html_body)
        else:
            message.text_body = body
    if "encrypted_to" in plain:
        message.to_addresses = _addresses(plain["encrypted_to"])
    if "encrypted_cc" in plain:
        message.cc_addresses = _addresses(plain["encrypted_cc"])
    if "encrypted_in_reply_to" in plain:
        message.in_reply_to = (_msg_ids(plain["encrypted_in_reply_to"]) or [""])[0]
    if "encrypted_references" in plain:
        message.references = _msg_ids(plain["encrypted_references"])
    original_body = plain.get("encrypted_body")
    leftovers = legacy_secrets.get(str(message.pk), {})
    message.raw = reconstruct_source(message, original_body, leftovers)
    _apply_language(message, leftovers)
    key = search_key_for(owner_id)
    root = (message.references or [None])[0] or message.in_reply_to or message.message_id
    message.thread_key = storable_thread_key(root or "subject:" + normalize_subject(message.subject), key)[:995]
    message.search_ids = index_ids(message, key)
    message.save(
        update_fields=[
            "from_name",
            "from_address",
            "subject",
            "text_body",
            "html_body",
            "has_remote_images",
            "to_addresses",
            "cc_addresses",
            "in_reply_to",
            "references",
            "thread_key",
            "search_ids",
            "raw",
        ]
    )


def _apply_language(message: Message, leftovers: dict[str, str]) -> None:
    """The legacy's detected language onto the imported analysis, its German translation as a translation."""
    from analysis.language import LANGUAGE_NAMES
    from analysis.models import MessageTranslation

    detected = str(leftovers.get("detected_language") or "")[:2].lower()
    if detected in LANGUAGE_NAMES:
        MessageAnalysis.objects.filter(message=message, language="").update(language=detected)
    text = leftovers.get("encrypted_translation_de") or ""
    if text.strip() and not MessageTranslation.objects.filter(message=message, language="de").exists():
        engine = str(leftovers.get("translation_engine") or "unknown")
        MessageTranslation.objects.create(
            owner_id=message.owner_id, message=message, language="de", body=text, method=f"legacy:{engine}"[:120]
        )


def reconstruct_source(message: Message, body: str | None, legacy_secrets: dict[str, str]) -> bytes:
    """An RFC 5322 message rebuilt from what the legacy stored (it did not keep the source).

    So that imported mail is like synced mail for everything that reads the source: the export's
    .eml files, "show images", the reply's Reply-To. Marked with X-Mailhelper-Reconstructed.
    """
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, formataddr

    reply_to = legacy_secrets.get("encrypted_reply_to", "")
    out = EmailMessage(policy=SMTP)
    headers = {
        "From": formataddr((message.from_name, message.from_address)) if message.from_address else "",
        "To": ", ".join(message.to_addresses),
        "Cc": ", ".join(message.cc_addresses),
        "Reply-To": reply_to,
        "Subject": message.subject,
        "Date": format_datetime(message.date) if message.date else "",
        "Message-ID": f"<{message.message_id}>" if message.message_id else "",
        "In-Reply-To": f"<{message.in_reply_to}>" if message.in_reply_to else "",
        "References": " ".join(f"<{r}>" for r in message.references),
    }
    for name, value in headers.items():
        if value:
            try:
                out[name] = value
            except (ValueError, TypeError):  # a header the legacy stored malformed: leave it out
                continue
    out["X-Mailhelper-Reconstructed"] = "imported from the legacy application"
    text = message.text_body or ""
    if body is not None and message.html_body:
        out.set_content(text or " ")
        out.add_alternative(body, subtype="html")
    else:
        out.set_content(text)
    for attachment in message.attachments.all():
        if attachment.data is None:
            continue
        maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
        out.add_attachment(
            bytes(attachment.data),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename or None,
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    return bytes(out)


def legacy_secrets(owner_id: int, message_pks: list[str]) -> dict[str, dict[str, str]]:
    """Per message, its legacy-only columns (Reply-To, Bcc, the German translation ...) from its leftover
    record, the encrypted ones decrypted (two queries)."""
    legacy_ids = dict(
        LegacyImportMap.objects.filter(table="raw_emails", owner_id=owner_id, target_pk__in=message_pks).values_list(
            "legacy_id", "target_pk"
        )
    )
    records = LegacyRecord.objects.filter(owner_id=owner_id, table="raw_emails", legacy_id__in=list(legacy_ids))
    return {legacy_ids[r.legacy_id]: {**(r.data or {}), **json.loads(r.secrets or "{}")} for r in records}


_ACCOUNT_FIELDS = {
    "encrypted_imap_server": ("imap_host", 255),
    "encrypted_imap_username": ("imap_username", 255),
    "encrypted_imap_password": ("imap_password", None),
    "encrypted_smtp_server": ("smtp_host", 255),
    "encrypted_smtp_username": ("smtp_username", 255),
    "encrypted_smtp_password": ("smtp_password", None),
}


#: An OAuth account's tokens (its server and user name come from the IMAP columns, as for a password account).
_OAUTH_ACCOUNT_FIELDS = {
    "encrypted_oauth_token": ("oauth_access_token", None),
    "encrypted_oauth_refresh_token": ("oauth_refresh_token", None),
}


#: A POP3 account's server and credentials fill the same incoming-server fields (mail.models.MailAccount).
_POP3_ACCOUNT_FIELDS = {
    "encrypted_pop3_server": ("imap_host", 255),
    "encrypted_pop3_username": ("imap_username", 255),
    "encrypted_pop3_password": ("imap_password", None),
    "encrypted_smtp_server": ("smtp_host", 255),
    "encrypted_smtp_username": ("smtp_username", 255),
    "encrypted_smtp_password": ("smtp_password", None),
}


def _apply_account(account: MailAccount, plain: dict[str, str], _extra: dict | None = None) -> None:
    """Server settings and credentials; a POP3 account's IMAP columns are not used (its POP3 ones are)."""
    owner_id = account.owner_id
    fields = _POP3_ACCOUNT_FIELDS if account.is_pop3 else _ACCOUNT_FIELDS
    if account.uses_oauth:
        fields = {**fields, **_OAUTH_ACCOUNT_FIELDS}
    for column, (name, limit) in fields.items():
        if column in plain:
            setattr(account, name, plain[column].strip()[:limit] if limit else plain[column])
    account.save()
    if plain.get("encrypted_signature_text", "").strip() and _signature_enabled(account):
        signature, _ = AccountSignature.objects.get_or_create(owner_id=owner_id, account=account)
        signature.text = plain["encrypted_signature_text"]
        signature.save()
    _unlock_account(account)


def _signature_enabled(account: MailAccount) -> bool:
    """The legacy's signature_enabled flag of the account (kept in its leftover record)."""
    legacy_id = (
        LegacyImportMap.objects.filter(table="mail_accounts", target_pk=str(account.pk))
        .values_list("legacy_id", flat=True)
        .first()
    )
    record = LegacyRecord.objects.filter(owner_id=account.owner_id, table="mail_accounts", legacy_id=legacy_id).first()
    return record is None or record.data.get("signature_enabled") is not False


def _unlock_account(account: MailAccount) -> None:
    """Enabled as it was in the legacy (once its server and credentials are readable), sync resumes."""
    entry = LegacyImportMap.objects.filter(table="mail_accounts", target_pk=str(account.pk)).first()
    note = dict(entry.note) if entry else {}
    enabled = note.get("legacy_enabled", True)
    if not account.email_address:
        owner_email = User.objects.filter(pk=account.owner_id).values_list("email", flat=True).first() or ""
        account.email_address = account.imap_username if "@" in account.imap_username else owner_email
    account.enabled = enabled is not False and bool(account.imap_host)
    account.status, account.status_message = MailAccount.Status.NEW, ""
    if account.uses_oauth and not account.oauth_refresh_token and _expired(account):
        # Nothing to refresh the lapsed token with: the first sync could only fail. A still-valid
        # refresh token needs nothing: the worker refreshes before its first login (mail/oauth.py).
        account.status = MailAccount.Status.NEEDS_ATTENTION
        account.status_message = gettext_noop("The imported sign-in has expired: sign in again.")  # shown translated
    account.save()  # the post_save signal enables the account's beat row
    if entry and account.enabled == (enabled is not False):  # the legacy flag is in force now: no longer needed
        note.pop("legacy_enabled", None)
        LegacyImportMap.objects.filter(pk=entry.pk).update(note=note)


def _expired(account: MailAccount) -> bool:
    return account.oauth_expires_at is None or account.oauth_expires_at <= timezone.now()


def _apply_attachment(attachment: Attachment, plain: dict[str, str], _extra: dict | None = None) -> None:
    if "encrypted_data" not in plain:
        return
    text = plain["encrypted_data"]
    try:  # the legacy stored files as base64 text inside the encrypted value
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        data = text.encode("utf-8")
    attachment.data = data
    attachment.save(update_fields=["data"])


def _apply_analysis(analysis: MessageAnalysis, plain: dict[str, str], _extra: dict | None = None) -> None:
    if "encrypted_summary_de" in plain:
        analysis.summary = plain["encrypted_summary_de"]
        analysis.save(update_fields=["summary"])


def _apply_reply_settings(settings: ReplySettings, plain: dict[str, str], _extra: dict | None = None) -> None:
    if "encrypted_custom_instructions" in plain:
        settings.instructions = plain["encrypted_custom_instructions"]
        settings.save(update_fields=["instructions"])


def _apply_record(record: LegacyRecord, plain: dict[str, str], _extra: dict | None = None) -> None:
    secrets = json.loads(record.secrets or "{}")
    secrets.update(plain)
    record.secrets = json.dumps(secrets, ensure_ascii=False, sort_keys=True)
    record.save(update_fields=["secrets"])


# model label -> (the rows, fetched per chunk scoped to the owner; what to write into one of them)
APPLY = {
    "mail.message": (lambda: Message.objects.defer("raw").prefetch_related("attachments"), _apply_message),
    "mail.mailaccount": (lambda: MailAccount.objects.all(), _apply_account),
    "mail.attachment": (lambda: Attachment.objects.defer("data"), _apply_attachment),
    "mail.messageanalysis": (lambda: MessageAnalysis.objects.all(), _apply_analysis),
    "mail.replysettings": (lambda: ReplySettings.objects.all(), _apply_reply_settings),
    "mailhelper.legacyrecord": (lambda: LegacyRecord.objects.all(), _apply_record),
}


# Messages last: their reconstructed source needs their attachments and leftover headers (Reply-To) converted.
ORDER = ["mail.mailaccount", "mail.attachment", "mailhelper.legacyrecord", "mail.messageanalysis",
         "mail.replysettings", "mail.message"]  # fmt: skip


# --- the conversion --------------------------------------------------------------------------------------------


@dataclass
class ConversionResult:
    state: str
    converted: int = 0
    failed: int = 0
    analyse_accounts: list[str] = field(default_factory=list)


def _pending(user_id: int) -> QuerySet[LegacySealedValue]:
    return LegacySealedValue.objects.filter(owner_id=user_id, converted_at__isnull=True, error="")


def lock_key(user_id: int) -> int:
    """The advisory lock of one user's conversion."""
    return locks.lock_key(f"legacy-convert|{user_id}")


def _user_lock(user_id: int) -> AbstractContextManager[bool]:
    return locks.try_advisory_lock(lock_key(user_id))


def convert_user(user_id: int) -> ConversionResult:
    """Convert every sealed value of the user (resumable); see the module docstring."""
    with _user_lock(user_id) as acquired:
        if not acquired:
            return ConversionResult(state="already running")
        return _convert_user(user_id)


def _convert_user(user_id: int) -> ConversionResult:
    key = LegacyUserKey.objects.filter(user_id=user_id).first()
    if key is None or key.state == LegacyUserKey.State.DONE:
        return ConversionResult(state="nothing to do")
    dek = _legacy_dek(user_id)
    if dek is None:
        if key.state == LegacyUserKey.State.CONVERTING:  # the login's cached key expired (or Redis lost it)
            LegacyUserKey.objects.filter(pk=key.pk).update(
                state=LegacyUserKey.State.WAITING, failure="the legacy key expired before conversion: log in again"
            )
        return ConversionResult(state=LegacyUserKey.State.WAITING)
    result = ConversionResult(state=LegacyUserKey.State.CONVERTING)
    labels = set(_pending(user_id).values_list("target", flat=True).distinct())
    for label in [*ORDER, *sorted(labels - set(ORDER))]:
        while True:
            pks = list(
                _pending(user_id).filter(target=label).order_by("target_pk").values_list("target_pk", flat=True)
                .distinct()[:CHUNK]
            )  # fmt: skip
            if not pks:
                break
            with transaction.atomic():
                converted, failed = _convert_chunk(user_id, dek, label, pks)
            result.converted += converted
            result.failed += failed
            if not converted and not failed:
                break  # the rows are locked by a concurrent run of this task: it finishes them
    result.analyse_accounts = _finish(user_id)
    # Subject hashes need the now readable subjects: header-less replies join their conversations
    # as they do for synced mail, without waiting for an operator's backfill_threads.
    threading_keys.backfill(owner_id=user_id)
    failures = LegacySealedValue.objects.filter(owner_id=user_id, converted_at__isnull=True).exclude(error="").count()
    LegacyUserKey.objects.filter(pk=key.pk).update(
        state=LegacyUserKey.State.DONE,
        converted_at=timezone.now(),
        salt="",
        encrypted_dek="",
        failure=f"{failures} value(s) could not be decrypted and stay sealed" if failures else "",
    )
    forget_legacy_key(user_id)
    keyring.forget(user_id)
    result.state = LegacyUserKey.State.DONE
    log.info("legacy data of user %s converted: %s value(s), %s failed", user_id, result.converted, failures)
    return result


def _convert_chunk(user_id: int, dek: bytes, label: str, pks: list[str]) -> tuple[int, int]:
    values = list(
        _pending(user_id).filter(target=label, target_pk__in=pks).select_for_update(skip_locked=True).order_by("pk")
    )
    if label not in APPLY:
        _pending(user_id).filter(pk__in=[v.pk for v in values]).update(error="no conversion for this kind of value")
        return 0, len(values)
    rows, apply = APPLY[label]
    by_target: dict[str, dict[str, str]] = {}
    done, broken = [], []
    for value in values:
        try:
            plaintext = legacy_crypto.decrypt_text(dek, value.ciphertext)
        except legacy_crypto.LegacyDecryptionError:
            broken.append(value.pk)
            continue
        by_target.setdefault(value.target_pk, {})[value.field] = plaintext
        done.append(value.pk)
    extra = legacy_secrets(user_id, list(by_target)) if label == "mail.message" else {}
    for row in rows().filter(owner_id=user_id, pk__in=list(by_target)):
        apply(row, by_target[str(row.pk)], extra)
    LegacySealedValue.objects.filter(pk__in=done).update(ciphertext=None, converted_at=timezone.now())
    LegacySealedValue.objects.filter(pk__in=broken).update(error="does not open with the legacy key")
    return len(done), len(broken)


def imported_messages(user_id: int) -> QuerySet:
    """The pks of the user's messages imported from the legacy, as a subquery (no list of 100,000 ids)."""
    return (
        LegacyImportMap.objects.filter(table="raw_emails", owner_id=user_id, kind=LegacyImportMap.Kind.ROW)
        .annotate(message_pk=Cast("target_pk", UUIDField()))
        .values("message_pk")
    )


def _finish(user_id: int) -> list[str]:
    """Accounts without sealed values are unlocked too; imported mail never analysed gets queued."""
    for account in MailAccount.objects.filter(
        owner_id=user_id, status=MailAccount.Status.LOCKED, status_message=WAITING_MESSAGE
    ):
        _unlock_account(account)
    imported = Message.objects.filter(owner_id=user_id, pk__in=imported_messages(user_id))
    for message in imported.filter(raw__isnull=True).defer("raw").prefetch_related("attachments").iterator(200):
        message.raw = reconstruct_source(message, None, {})  # nothing was sealed in these
        message.save(update_fields=["raw"])
    from accounts.fields import seal_fields

    dek = keyring.dek_for(user_id)
    accounts: set = set()
    while True:  # imported mail the legacy never analysed: pending analyses, in batches
        batch = list(imported.filter(analysis__isnull=True).values_list("pk", "account_id")[:1000])
        if not batch:
            break
        fresh = [MessageAnalysis(owner_id=user_id, message_id=pk) for pk, _ in batch]
        for analysis in fresh:
            seal_fields(analysis, dek)
        MessageAnalysis.objects.bulk_create(fresh)
        accounts.update(account for _, account in batch)
    return sorted({str(a) for a in accounts})
