"""Cryptographic primitives of the keyring: AES-256-GCM values and key derivation.

Plain functions over bytes, no Django, so they are easy to test and to reason about. Every sealed
value is `version byte || 96-bit nonce || ciphertext+tag`, with associated data chosen by the caller
to bind the value to its place (owner, model, field, row); a value moved elsewhere fails to open.
"""

from __future__ import annotations

import base64
import os
import threading
import zlib
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1  # AES-256-GCM over the plaintext
FORMAT_DEFLATED = 2  # AES-256-GCM over the zlib-compressed plaintext (still read; no longer written)
FORMAT_ZSTD = 3  # AES-256-GCM over the zstd-compressed plaintext (mail bodies, raw sources)
KEY_BYTES = 32
NONCE_BYTES = 12
_HEADER = bytes([FORMAT_VERSION])
_HEADER_DEFLATED = bytes([FORMAT_DEFLATED])
_HEADER_ZSTD = bytes([FORMAT_ZSTD])
_ZSTD_LEVEL = 1  # ~3x faster than zlib level 1 here, and smaller
_COMPRESS_MIN = 512  # below this, compression rarely pays for its header


class DecryptionError(Exception):
    """A value did not open: wrong key, wrong place (owner/model/field/row) or tampered.

    The message never contains the value or the key.
    """


# One zstd (de)compressor per thread, made once: a new ZstdCompressor and its first compress()
# allocate a context, which cost 7x the compression of a 30 KB body (#15). Objects of the zstandard
# package may not be shared between threads, hence thread-local.
_zstd = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_zstd, "compressor", None)
    if compressor is None:
        compressor = _zstd.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_zstd, "decompressor", None)
    if decompressor is None:
        decompressor = _zstd.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes, compress: bool = False) -> bytes:
    """Encrypt; with compress=True, deflate first when that makes the value smaller.

    Compression is for bulky mail content stored at rest (it is written once and read rarely;
    mail text shrinks 3-5x, which is most of the cost of storing it). The format byte records it,
    and it is covered by the authentication tag like everything else.
    """
    header = _HEADER
    if compress and len(plaintext) >= _COMPRESS_MIN:
        packed = _compressor().compress(plaintext)
        if len(packed) < len(plaintext) * 0.9:
            header, plaintext = _HEADER_ZSTD, packed
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def value_aad(owner_id: int, model_label: str, field_name: str, pk: object) -> bytes:
    """The associated data of a model field's value: binds it to its owner, model, field and row.

    Here rather than in accounts.fields so that code without Django (the sync's parser processes,
    mail/sync_pool.py) seals values exactly as the fields do."""
    return f"mailhelper/value/v1|{owner_id}|{model_label}|{field_name}|{pk}".encode()


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    blob = bytes(blob)
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] not in (FORMAT_VERSION, FORMAT_DEFLATED, FORMAT_ZSTD):
        raise DecryptionError("unknown ciphertext format")
    header, nonce, body = blob[:1], blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        plaintext = AESGCM(key).decrypt(nonce, body, header + aad)
    except InvalidTag:
        raise DecryptionError("ciphertext does not open with this key and context") from None
    try:
        if header == _HEADER_ZSTD:
            return _decompressor().decompress(plaintext)
        if header == _HEADER_DEFLATED:
            return zlib.decompress(plaintext)
    except (zlib.error, zstandard.ZstdError):
        raise DecryptionError("compressed value is corrupt") from None
    return plaintext


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id parameters, stored next to each password wrap so they can be raised later."""

    salt: bytes
    iterations: int
    memory_kib: int
    lanes: int

    @classmethod
    def fresh(cls, iterations: int, memory_kib: int, lanes: int) -> Argon2Params:
        return cls(os.urandom(16), iterations, memory_kib, lanes)

    def as_dict(self) -> dict:
        return {
            "kdf": "argon2id",
            "salt": b64e(self.salt),
            "iterations": self.iterations,
            "memory_kib": self.memory_kib,
            "lanes": self.lanes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Argon2Params:
        if data.get("kdf") != "argon2id":
            raise ValueError(f"unsupported password KDF {data.get('kdf')!r}")
        return cls(b64d(data["salt"]), int(data["iterations"]), int(data["memory_kib"]), int(data["lanes"]))

    def derive(self, password: str) -> bytes:
        return Argon2id(
            salt=self.salt,
            length=KEY_BYTES,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(password.encode("utf-8"))


def derive_code_key(code: str, salt: bytes) -> bytes:
    """Key from a recovery code. The codes carry ~79 bits of entropy, so HKDF suffices."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"mailhelper recovery code v1").derive(
        code.encode("ascii")
    )


def key_id(key: bytes) -> str:
    """Short public fingerprint of a key, to tell which key wrapped what without revealing it."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"mailhelper key id v1|" + key)
    return digest.finalize()[:8].hex()
