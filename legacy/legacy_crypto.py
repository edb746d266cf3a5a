"""The legacy application's encryption, as SCHEMA.md describes it (read side only, plus `seal_legacy`
for the tests that build legacy data).

KEK = PBKDF2-HMAC-SHA256(password, base64-decoded users.salt, 600,000 iterations, 32 bytes);
users.encrypted_dek and every encrypted_* column are base64(iv(12) || AES-256-GCM ciphertext || tag(16)),
no associated data. Errors never carry a key or a value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PBKDF2_ITERATIONS = 600_000
IV_BYTES = 12


class LegacyDecryptionError(Exception):
    """A legacy value did not open (wrong key or damaged); the message never contains the value."""


def derive_kek(password: str, salt_b64: str) -> bytes:
    try:
        salt = base64.b64decode(salt_b64, validate=False)
    except (binascii.Error, ValueError):
        raise LegacyDecryptionError("the legacy salt is not base64") from None
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ITERATIONS, dklen=32)


def _open(key: bytes, text: str) -> bytes:
    try:
        blob = base64.b64decode("".join(text.split()), validate=False)
    except (binascii.Error, ValueError):
        raise LegacyDecryptionError("a legacy value is not base64") from None
    if len(blob) < IV_BYTES + 16:
        raise LegacyDecryptionError("a legacy value is too short")
    try:
        return AESGCM(key).decrypt(blob[:IV_BYTES], blob[IV_BYTES:], None)
    except InvalidTag:
        raise LegacyDecryptionError("a legacy value does not open with this key") from None


def unwrap_dek(password: str, salt_b64: str, encrypted_dek: str) -> bytes:
    dek = _open(derive_kek(password, salt_b64), encrypted_dek)
    if len(dek) != 32:
        raise LegacyDecryptionError("the legacy data key has the wrong length")
    return dek


def decrypt_text(dek: bytes, ciphertext: str) -> str:
    return _open(dek, ciphertext).decode("utf-8", "replace")


def seal_legacy(key: bytes, plaintext: bytes) -> str:
    """Encrypt like the legacy application did (used by tests to build legacy databases)."""
    iv = os.urandom(IV_BYTES)
    return base64.b64encode(iv + AESGCM(key).encrypt(iv, plaintext, None)).decode("ascii")
