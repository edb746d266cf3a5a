"""Legacy (werkzeug) password hashes, accepted once and then re-hashed.

Users imported from the legacy application (`manage.py import_legacy`) keep their password. Their
werkzeug hash (`scrypt:N:r:p$salt$hex` or `pbkdf2:sha256:iterations$salt$hex`) is stored as
`wz$<method>$<salt>$<base64 digest>`: Django's password column holds 128 characters and a werkzeug
scrypt hash in hex is longer, so the digest is re-encoded, not truncated (`from_werkzeug`).

The hasher is the last entry of PASSWORD_HASHERS, so Django's check_password verifies the legacy
hash and, on success, re-hashes the password with the preferred hasher and saves it: the legacy
hash is gone after the first login. It never creates hashes itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash

ALGORITHM = "wz"
_MAX_SCRYPT_N = 2**20


class LegacyHashError(ValueError):
    """A hash that is not a werkzeug hash this module can verify."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse_method(method: str) -> tuple[str, tuple]:
    name, *args = method.split(":")
    if name == "scrypt":
        n, r, p = (int(a) for a in args) if args else (2**15, 8, 1)
        if not (1 < n <= _MAX_SCRYPT_N and 0 < r <= 64 and 0 < p <= 16):
            raise LegacyHashError("scrypt parameters out of range")
        return "scrypt", (n, r, p)
    if name == "pbkdf2":
        hash_name = args[0] if args else "sha256"
        iterations = int(args[1]) if len(args) > 1 else 600_000
        if hash_name not in hashlib.algorithms_guaranteed or not 0 < iterations <= 10_000_000:
            raise LegacyHashError("pbkdf2 parameters out of range")
        return "pbkdf2", (hash_name, iterations)
    raise LegacyHashError("unsupported werkzeug method")


def werkzeug_digest(method: str, salt: str, password: str) -> bytes:
    """The digest werkzeug.security computes for `method` (same parameters, same defaults)."""
    name, params = _parse_method(method)
    if name == "scrypt":
        n, r, p = params
        return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p)
    hash_name, iterations = params
    return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt.encode(), iterations)


def from_werkzeug(legacy_hash: str) -> str:
    """The Django-encoded form of a werkzeug hash; LegacyHashError if it cannot be verified later."""
    try:
        method, salt, hex_digest = legacy_hash.split("$", 2)
        _parse_method(method)
        digest = bytes.fromhex(hex_digest)
    except (ValueError, LegacyHashError):
        raise LegacyHashError("not a werkzeug scrypt/pbkdf2 hash") from None
    if "$" in salt:
        raise LegacyHashError("unexpected salt")
    encoded = f"{ALGORITHM}${method}${salt}${_b64(digest)}"
    if len(encoded) > 128:
        raise LegacyHashError("the hash does not fit Django's password column")
    return encoded


class WerkzeugPasswordHasher(BasePasswordHasher):
    algorithm = ALGORITHM

    def _split(self, encoded: str) -> tuple[str, str, bytes]:
        algorithm, method, salt, digest = encoded.split("$", 3)
        if algorithm != self.algorithm:
            raise LegacyHashError("not a werkzeug hash")
        return method, salt, _unb64(digest)

    def verify(self, password: str, encoded: str) -> bool:
        try:
            method, salt, expected = self._split(encoded)
            computed = werkzeug_digest(method, salt, password)
        except (ValueError, LegacyHashError):
            return False
        return hmac.compare_digest(computed, expected)

    def encode(self, password: str, salt: str) -> str:
        raise NotImplementedError("legacy hashes are only verified, never created")

    def decode(self, encoded: str) -> dict:
        method, salt, digest = self._split(encoded)
        return {"algorithm": self.algorithm, "method": method, "salt": salt, "hash": digest}

    def safe_summary(self, encoded: str) -> dict:
        decoded = self.decode(encoded)
        return {
            "algorithm": self.algorithm,
            "method": decoded["method"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(_b64(decoded["hash"])),
        }

    def must_update(self, encoded: str) -> bool:
        return True

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass
