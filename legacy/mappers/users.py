"""Legacy users (password hash, legacy key, TOTP) and their recovery codes (not imported, by design)."""

from __future__ import annotations

import base64
import binascii

from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import keyring
from accounts.hashers import LegacyHashError, from_werkzeug
from accounts.models import User
from legacy.models import LegacyImportMap, LegacyUserKey
from tags.models import TagSettings

from ..context import Context, Result
from .base import (
    IMPORTED_TOTP_NAME,
    ROW,
    SKIPPED,
    Mapper,
    canonical,
    clear_none,
    keep_original,
)

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
                keep_original(note, "failed_login_attempts", None)
            if row.get("created_at") is None:
                keep_original(note, "created_at", None)
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
                keep_original(note, "totp_secret", row.get("totp_secret"))
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
            out[str(user.pk)] = clear_none(
                {
                    "username": user.username,
                    "email": user.email,
                    "failed_login_attempts": user.failed_login_count,
                    "locked_until": canonical(user.locked_until),
                    "created_at": canonical(user.date_joined),
                    "totp_enabled": device is not None and device.confirmed,
                    "totp_secret": _b32(device.bin_key) if device else None,
                    "enable_auto_assignment": auto.get(user.pk),
                }
            )
        return out


class RecoveryCodes(Mapper):
    table = "recovery_codes"
    fks = {"user_id": ("users", True)}
    by_design = "legacy codes are hashes and cannot unlock a Mailhelper data key; users make new codes at first login"
