"""Per-user data keys (DEKs): creation, wrapping, unwrapping, recovery and the server sync key.

This module is the only place that handles a raw DEK. Views, tasks and commands call these
functions; encrypted model fields (accounts.fields) ask `dek_for()` for the owner's key.

Where a DEK can come from, in order:
1. the wrap under the server sync key (normal mode: lets beat sync while the user is away);
2. in strict mode, a copy sealed under the sync key in Redis while the user is logged in;
otherwise the user is *locked* and background work for them is skipped.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from . import crypto
from .crypto import Argon2Params, DecryptionError
from .models import DataKeyWrap, User

RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are typed by hand
RECOVERY_CODE_LENGTH = 16
_SYNC_CACHE_SECONDS = 60.0
_STRICT_CACHE_SECONDS = 5.0


class KeyringError(Exception):
    """Base class; messages never contain key material or content."""


class KeyringLocked(KeyringError):
    """The user's data key is not available right now (strict mode and not logged in)."""


class SyncKeyError(ImproperlyConfigured):
    """The server sync key is missing, malformed or not the one that wrapped the stored keys."""


# --- the server sync key ------------------------------------------------------------------------


def load_sync_key() -> bytes:
    """Read MAILHELPER_SYNC_KEY or MAILHELPER_SYNC_KEY_FILE; the error names the variable to fix."""
    raw, source = settings.MAILHELPER_SYNC_KEY, "MAILHELPER_SYNC_KEY"
    if not raw and settings.MAILHELPER_SYNC_KEY_FILE:
        source = "MAILHELPER_SYNC_KEY_FILE"
        try:
            raw = Path(settings.MAILHELPER_SYNC_KEY_FILE).read_text().strip()
        except OSError as exc:
            raise SyncKeyError(
                f"MAILHELPER_SYNC_KEY_FILE points to {settings.MAILHELPER_SYNC_KEY_FILE!r}, "
                f"which cannot be read ({exc.strerror})"
            ) from None
    if not raw:
        raise SyncKeyError(
            "MAILHELPER_SYNC_KEY is not set (nor MAILHELPER_SYNC_KEY_FILE): generate one with "
            "`python manage.py generate_sync_key` and put it in the environment or .env"
        )
    return parse_sync_key(raw, source)


def parse_sync_key(raw: str, source: str = "MAILHELPER_SYNC_KEY") -> bytes:
    try:
        key = crypto.b64d(raw.strip())
    except (ValueError, UnicodeEncodeError):
        key = b""
    if len(key) != crypto.KEY_BYTES:
        raise SyncKeyError(
            f"{source} is not a valid sync key: expected 32 bytes in urlsafe base64 "
            "(as printed by `python manage.py generate_sync_key`)"
        )
    return key


def new_sync_key_text() -> str:
    return crypto.b64e(crypto.new_key())


def check_sync_key_at_startup() -> None:
    """Fail fast when the configured sync key cannot unwrap the keys already stored.

    Called by wsgi.py and at worker start. A fresh database (no table yet) passes.
    """
    key = load_sync_key()
    from django.db import DatabaseError

    try:
        foreign = (
            DataKeyWrap.objects.filter(kind=DataKeyWrap.Kind.SYNC)
            .exclude(key_id=crypto.key_id(key))
            .values_list("key_id", flat=True)
            .first()
        )
    except DatabaseError:
        return  # not migrated yet: nothing was wrapped with any key
    if foreign:
        raise SyncKeyError(
            f"MAILHELPER_SYNC_KEY (key id {crypto.key_id(key)}) is not the key that wrapped the stored "
            f"data keys (key id {foreign}): restore the previous key or run `manage.py rotate_sync_key`"
        )


def _wrap_aad(user_id: int, kind: str) -> bytes:
    return f"mailhelper/dek-wrap/v1|{user_id}|{kind}".encode()


def _strict_cache_key(user_id: int) -> str:
    return f"dek:{user_id}"


def _strict_aad(user_id: int) -> bytes:
    return f"mailhelper/strict-session/v1|{user_id}".encode()


# --- in-process cache of unwrapped keys -----------------------------------------------------------
# A list page decrypts many values of one owner; unwrapping once per value would cost a query each.

_cache_lock = threading.Lock()
_dek_cache: dict[int, tuple[bytes, float]] = {}


def _remember(user_id: int, dek: bytes, seconds: float) -> None:
    with _cache_lock:
        _dek_cache[user_id] = (dek, time.monotonic() + seconds)


def forget(user_id: int) -> None:
    """Drop this process's cached copy of a user's key (logout, strict mode, deletion)."""
    with _cache_lock:
        _dek_cache.pop(user_id, None)


def forget_all() -> None:
    with _cache_lock:
        _dek_cache.clear()


def _cached(user_id: int) -> bytes | None:
    with _cache_lock:
        hit = _dek_cache.get(user_id)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        _dek_cache.pop(user_id, None)
    return None


# --- creating and reading the DEK -----------------------------------------------------------------


def _password_params() -> Argon2Params:
    return Argon2Params.fresh(
        settings.MAILHELPER_KDF_ITERATIONS, settings.MAILHELPER_KDF_MEMORY_KIB, settings.MAILHELPER_KDF_LANES
    )


def _store_password_wrap(user: User, dek: bytes, password: str) -> None:
    params = _password_params()
    wrapped = crypto.seal(params.derive(password), dek, _wrap_aad(user.pk, DataKeyWrap.Kind.PASSWORD))
    DataKeyWrap.objects.update_or_create(
        user=user,
        kind=DataKeyWrap.Kind.PASSWORD,
        defaults={"params": params.as_dict(), "wrapped_key": wrapped},
    )


def _store_sync_wrap(user: User, dek: bytes, sync_key: bytes | None = None) -> None:
    sync_key = sync_key or load_sync_key()
    wrapped = crypto.seal(sync_key, dek, _wrap_aad(user.pk, DataKeyWrap.Kind.SYNC))
    DataKeyWrap.objects.update_or_create(
        user=user,
        kind=DataKeyWrap.Kind.SYNC,
        defaults={"params": {"kdf": "none"}, "wrapped_key": wrapped, "key_id": crypto.key_id(sync_key)},
    )


def has_keyring(user: User) -> bool:
    return DataKeyWrap.objects.filter(user=user, kind=DataKeyWrap.Kind.PASSWORD).exists()


@transaction.atomic
def create_keyring(user: User, password: str) -> bytes:
    """Give a new user a random DEK, wrapped by their password and (unless strict) the sync key."""
    dek = crypto.new_key()
    _store_password_wrap(user, dek, password)
    if not user.strict_mode:
        _store_sync_wrap(user, dek)
    return dek


@transaction.atomic
def create_server_keyring(user: User) -> bytes:
    """A DEK for a user whose password the server does not know yet (imported from the legacy
    application): wrapped by the sync key only. The first login adds the password wrap
    (on_password_verified), and the user makes recovery codes then."""
    if DataKeyWrap.objects.filter(user=user).exists():
        raise KeyringError("user already has a keyring")
    dek = crypto.new_key()
    _store_sync_wrap(user, dek)
    return dek


def unwrap_with_password(user: User, password: str) -> bytes:
    wrap = DataKeyWrap.objects.filter(user=user, kind=DataKeyWrap.Kind.PASSWORD).first()
    if wrap is None:
        raise KeyringError("user has no password wrap")
    kek = Argon2Params.from_dict(wrap.params).derive(password)
    return crypto.open_sealed(kek, wrap.wrapped_key, _wrap_aad(user.pk, DataKeyWrap.Kind.PASSWORD))


def _unwrap_with_sync_key(user_id: int) -> bytes | None:
    wrap = DataKeyWrap.objects.filter(user_id=user_id, kind=DataKeyWrap.Kind.SYNC).first()
    if wrap is None:
        return None
    return crypto.open_sealed(load_sync_key(), wrap.wrapped_key, _wrap_aad(user_id, DataKeyWrap.Kind.SYNC))


def dek_for(user_id: int) -> bytes:
    """The user's data key, for encrypting or decrypting their values.

    Raises KeyringLocked for a strict-mode user who is not logged in.
    """
    dek = _cached(user_id)
    if dek is not None:
        return dek
    dek = _unwrap_with_sync_key(user_id)
    if dek is not None:
        _remember(user_id, dek, _SYNC_CACHE_SECONDS)
        return dek
    sealed = cache.get(_strict_cache_key(user_id))
    if sealed is None:
        raise KeyringLocked("locked: log in to resume")
    dek = crypto.open_sealed(load_sync_key(), sealed, _strict_aad(user_id))
    _remember(user_id, dek, _STRICT_CACHE_SECONDS)
    return dek


def is_locked(user_id: int) -> bool:
    try:
        dek_for(user_id)
    except KeyringLocked:
        return True
    return False


# --- login, logout and strict mode ----------------------------------------------------------------


def on_password_verified(user: User, password: str) -> bytes:
    """Called after Django accepted the password: return the DEK and keep the wraps healthy.

    Creates the keyring for users made outside the UI (createsuperuser), adds the password wrap for
    users imported with a server-wrapped key only (import_legacy); re-wraps when an operator
    set a new password in the admin (the sync wrap still holds the DEK); in strict mode caches the
    DEK for this login.
    """
    if not has_keyring(user):
        dek = _unwrap_with_sync_key(user.pk)  # imported users: a server-wrapped DEK already exists
        if dek is None:
            dek = create_keyring(user, password)
        else:
            _store_password_wrap(user, dek, password)
    else:
        try:
            dek = unwrap_with_password(user, password)
        except DecryptionError:
            dek = _unwrap_with_sync_key(user.pk)
            if dek is None:
                raise KeyringLocked(
                    "the password wrap does not match the password and no server wrap exists: "
                    "use a recovery code to restore access to the data"
                ) from None
            _store_password_wrap(user, dek, password)
    if user.strict_mode:
        cache_session_key(user, dek)
    return dek


def cache_session_key(user: User, dek: bytes) -> None:
    sealed = crypto.seal(load_sync_key(), dek, _strict_aad(user.pk))
    cache.set(_strict_cache_key(user.pk), sealed, timeout=settings.SESSION_COOKIE_AGE)


def touch_session_key(user: User) -> None:
    """Slide the strict-mode key's expiry with the session's."""
    cache.touch(_strict_cache_key(user.pk), timeout=settings.SESSION_COOKIE_AGE)


def drop_session_key(user: User) -> None:
    cache.delete(_strict_cache_key(user.pk))
    forget(user.pk)


@transaction.atomic
def set_strict_mode(user: User, enabled: bool, password: str) -> None:
    """Turn strict mode on (drop the server wrap) or off (re-create it); needs the password."""
    dek = unwrap_with_password(user, password)
    user.strict_mode = enabled
    user.save(update_fields=["strict_mode"])
    if enabled:
        DataKeyWrap.objects.filter(user=user, kind=DataKeyWrap.Kind.SYNC).delete()
        cache_session_key(user, dek)
    else:
        _store_sync_wrap(user, dek)
    forget(user.pk)


# --- password change and recovery -------------------------------------------------------------------


@transaction.atomic
def change_password(user: User, old_password: str, new_password: str) -> None:
    """Re-wrap the same DEK under the new password: no value is re-encrypted, none is lost."""
    dek = unwrap_with_password(user, old_password)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    _store_password_wrap(user, dek, new_password)


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


@transaction.atomic
def issue_recovery_codes(user: User, dek: bytes) -> list[str]:
    """Replace the user's recovery codes; the plain codes exist only in the returned list."""
    DataKeyWrap.objects.filter(user=user, kind=DataKeyWrap.Kind.RECOVERY).delete()
    codes = []
    aad = _wrap_aad(user.pk, DataKeyWrap.Kind.RECOVERY)
    for _ in range(settings.MAILHELPER_RECOVERY_CODE_COUNT):
        code = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        salt = secrets.token_bytes(16)
        DataKeyWrap.objects.create(
            user=user,
            kind=DataKeyWrap.Kind.RECOVERY,
            params={"kdf": "hkdf-sha256", "salt": crypto.b64e(salt)},
            wrapped_key=crypto.seal(crypto.derive_code_key(code, salt), dek, aad),
        )
        codes.append(format_code(code))
    from .models import RecoveryDevice

    RecoveryDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes", "confirmed": True})
    return codes


@transaction.atomic
def redeem_recovery_code(user: User, code: str) -> bytes | None:
    """Use up one recovery code; return the DEK it unwraps, or None if it matches no unused code."""
    code = _normalise_code(code)
    if len(code) != RECOVERY_CODE_LENGTH:
        return None
    aad = _wrap_aad(user.pk, DataKeyWrap.Kind.RECOVERY)
    wraps = DataKeyWrap.objects.select_for_update().filter(
        user=user, kind=DataKeyWrap.Kind.RECOVERY, used_at__isnull=True
    )
    for wrap in wraps:
        key = crypto.derive_code_key(code, crypto.b64d(wrap.params["salt"]))
        try:
            dek = crypto.open_sealed(key, wrap.wrapped_key, aad)
        except DecryptionError:
            continue
        wrap.used_at = timezone.now()
        wrap.save(update_fields=["used_at"])
        return dek
    return None


@transaction.atomic
def reset_password_with_recovery_code(user: User, code: str, new_password: str) -> bool:
    """Forgotten password: a recovery code unwraps the DEK, which is re-wrapped under the new one."""
    dek = redeem_recovery_code(user, code)
    if dek is None:
        return False
    user.set_password(new_password)
    user.failed_login_count = 0
    user.locked_until = None
    user.save(update_fields=["password", "failed_login_count", "locked_until"])
    _store_password_wrap(user, dek, new_password)
    return True


# --- operations -------------------------------------------------------------------------------------


@transaction.atomic
def rotate_sync_key(new_key: bytes) -> int:
    """Re-wrap every server-wrapped DEK (and strict-mode session copies) under a new sync key.

    Content is untouched. Returns the number of wraps rotated.
    """
    old_key = load_sync_key()
    count = 0
    for wrap in DataKeyWrap.objects.select_for_update().filter(kind=DataKeyWrap.Kind.SYNC):
        aad = _wrap_aad(wrap.user_id, DataKeyWrap.Kind.SYNC)
        dek = crypto.open_sealed(old_key, wrap.wrapped_key, aad)
        wrap.wrapped_key = crypto.seal(new_key, dek, aad)
        wrap.key_id = crypto.key_id(new_key)
        wrap.save(update_fields=["wrapped_key", "key_id"])
        count += 1
    for user_id in User.objects.filter(strict_mode=True).values_list("pk", flat=True):
        sealed = cache.get(_strict_cache_key(user_id))
        if sealed is not None:
            dek = crypto.open_sealed(old_key, sealed, _strict_aad(user_id))
            ttl = cache.ttl(_strict_cache_key(user_id)) or settings.SESSION_COOKIE_AGE
            cache.set(_strict_cache_key(user_id), crypto.seal(new_key, dek, _strict_aad(user_id)), ttl)
    forget_all()
    return count
